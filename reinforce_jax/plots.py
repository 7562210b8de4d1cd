"""Learning-curve figures, written with matplotlib's non-interactive backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reinforce_jax.stats import bootstrap_ci_curve


def plot_curves(curves: np.ndarray, path: Path, title: str, ylabel: str = "episode return",
                diverged: np.ndarray | None = None) -> None:
    """Mean over finite seeds with a 95% bootstrap band, plus each seed faintly.

    Args:
      curves: [seeds, updates]; diverged seeds are drawn dashed and left out of the mean.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = np.asarray(curves, np.float64)
    bad = np.zeros(curves.shape[0], bool) if diverged is None else np.asarray(diverged, bool)
    x = np.arange(1, curves.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, curve in enumerate(curves):
        ax.plot(x, curve, lw=0.6, alpha=0.35, color="tab:red" if bad[i] else "tab:gray",
                ls="--" if bad[i] else "-")
    good = curves[~bad]
    if good.size:
        low, high = bootstrap_ci_curve(good)
        ax.fill_between(x, low, high, color="tab:blue", alpha=0.25, label="95% CI of the mean")
        ax.plot(x, good.mean(0), color="tab:blue", lw=2, label=f"mean of {len(good)} seeds")
    if bad.any():
        ax.plot([], [], color="tab:red", ls="--", label=f"{int(bad.sum())} diverged (excluded)")
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
