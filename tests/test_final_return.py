"""The final-return window and the bootstrap band, each defined once (stats, plots)."""

import numpy as np
import pytest

from reinforce_jax.plots import mean_with_band, pyplot
from reinforce_jax.stats import FINAL_WINDOW, final_return


def test_final_return_by_hand():
    curves = np.array([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, np.nan, np.nan]])
    np.testing.assert_allclose(final_return(curves, window=2), [3.5, np.nan])
    # a run padded to a longer sweep: only its own updates count
    assert final_return(curves[1], updates=2, window=FINAL_WINDOW) == pytest.approx(5.5)
    assert final_return(curves[0], updates=3, window=1) == 3.0
    assert np.isnan(final_return(np.zeros((3, 0)))).all()


def test_the_band_is_drawn_behind_the_mean_and_only_over_several_runs():
    plt = pyplot()
    fig, ax = plt.subplots()
    curves = np.array([[0.0, 2.0, 4.0], [2.0, 4.0, 6.0], [1.0, 3.0, 5.0]])
    line = mean_with_band(ax, np.arange(3), curves, color="tab:green")
    np.testing.assert_allclose(line.get_ydata(), [1.0, 3.0, 5.0])
    (band,) = ax.collections
    assert band.get_zorder() < line.get_zorder()
    np.testing.assert_allclose(band.get_facecolor()[0][:3], plt.matplotlib.colors.to_rgb(
        "tab:green"))
    mean_with_band(ax, np.arange(3), curves[:1])
    assert len(ax.collections) == 1  # no band for one run
    plt.close(fig)
