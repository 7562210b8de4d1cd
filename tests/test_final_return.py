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


def test_solved_stop_uses_the_final_return_window_and_ignores_diverged_runs():
    from reinforce_jax.driver import BatchOutcome, Runs, SolvedStop

    returns = np.zeros((3, 15))
    returns[0, 5:] = 100.0  # its last-10 mean reaches 50 at update 10 (5 x 100 / 10)
    returns[1, :] = 49.0  # never 50
    returns[2, 3:] = np.nan  # diverged at update 3
    def metrics(returns):
        return {"episode_return": returns, "loss": np.zeros_like(returns)}

    outcome = BatchOutcome(None, metrics(returns), np.array([-1, -1, 3]), 0.0)
    stop = SolvedStop(50.0)
    stop.start(Runs("train", [0, 1, 2], 40, ["seed 0", "seed 1", "seed 2"]),
               BatchOutcome(None, metrics(returns[:, :0]), outcome.diverged_at, 0.0))
    stop(outcome, 15)
    assert stop.solved_at.tolist() == [10, -1, -1] and outcome.stopped is None
    returns = np.concatenate([returns, np.full((3, 5), 60.0)], axis=1)
    returns[2, 15:] = np.nan
    outcome.metrics = metrics(returns)
    stop(outcome, 20)
    # seed 1: updates 7..16 average (9 x 49 + 60) / 10 = 50.1, the first window >= 50
    assert stop.solved_at.tolist() == [10, 16, -1]
    assert outcome.stopped is not None and "reached 50" in outcome.stopped
