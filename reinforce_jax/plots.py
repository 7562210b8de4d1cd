"""Learning-curve figures, written with matplotlib's non-interactive backend.

The x-axis is cumulative env steps, so curves overlay with other libraries' (which
count env steps, not updates); train's plot keeps the update index on a top axis.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reinforce_jax.stats import bootstrap_ci_curve

ENV_STEPS_LABEL = "env steps, cumulative (steps inside episodes, padding excluded)"


def cumulative_env_steps(env_steps: np.ndarray) -> np.ndarray:
    """[updates]: the mean over runs of each run's cumulative env steps.

    Args:
      env_steps: [runs, updates], the valid steps of each update (metrics' ``env_steps``).
    """
    env_steps = np.asarray(env_steps, np.float64)
    if env_steps.ndim != 2:
        raise ValueError(f"env_steps has shape {env_steps.shape}; allowed: [runs, updates]")
    return np.cumsum(env_steps, axis=1).mean(axis=0)


def curves_figure(curves: np.ndarray, env_steps: np.ndarray, title: str,
                  ylabel: str = "episode return", diverged: np.ndarray | None = None):
    """The figure ``plot_curves`` saves (returned, so a test can read its axes).

    Args:
      curves: [seeds, updates]; diverged seeds are drawn dashed and left out of the mean.
      env_steps: [seeds, updates], valid env steps per update; the x-axis is the mean
        over the finite seeds (all seeds if none) of their cumulative sum.
    """
    plt = pyplot()
    curves = np.asarray(curves, np.float64)
    bad = np.zeros(curves.shape[0], bool) if diverged is None else np.asarray(diverged, bool)
    steps = np.asarray(env_steps)
    if steps.shape != curves.shape:
        raise ValueError(f"env_steps has shape {steps.shape}; allowed: the curves' shape "
                         f"{curves.shape}")
    x = cumulative_env_steps(steps[~bad] if (~bad).any() else steps)
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for i, curve in enumerate(curves):
        ax.plot(x, curve, lw=0.6, alpha=0.35, color="tab:red" if bad[i] else "tab:gray",
                ls="--" if bad[i] else "-")
    good = curves[~bad]
    if good.size:
        mean_with_band(ax, x, good, color="tab:blue", lw=2, label=f"mean of {len(good)} seeds",
                       band_label="95% CI of the mean")
    if bad.any():
        ax.plot([], [], color="tab:red", ls="--", label=f"{int(bad.sum())} diverged (excluded)")
    from matplotlib.ticker import EngFormatter, MaxNLocator

    ax.set_xlabel(ENV_STEPS_LABEL + ", mean over seeds")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 1.5M, not an offset "1e6"
    if len(x) > 1 and np.all(np.diff(x) > 0):  # the update index on a top axis
        updates = np.arange(1, len(x) + 1, dtype=np.float64)
        top = ax.secondary_xaxis("top", functions=(_linear_map(x, updates),
                                                   _linear_map(updates, x)))
        # ticks only over the updates that exist: the margins map outside them
        ticks = MaxNLocator(6, integer=True).tick_values(1, len(x))
        top.set_xticks(ticks[(ticks >= 1) & (ticks <= len(x))])
        top.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def mean_with_band(ax, x: np.ndarray, curves: np.ndarray, *, color=None, lw: float = 1.6,
                   label: str | None = None, band_label: str | None = None,
                   alpha: float = 0.25, num_resamples: int = 1000):
    """Draw the mean over runs of ``curves`` against ``x`` with its pointwise 95%
    bootstrap CI (``stats.bootstrap_ci_curve``) as a band behind it; no band for one run.

    Args:
      x: [points]; curves: [runs, points], finite.
    Returns:
      the mean's line.
    """
    curves = np.asarray(curves, np.float64)
    (line,) = ax.plot(x, curves.mean(0), color=color, lw=lw, label=label)
    if curves.shape[0] > 1:
        low, high = bootstrap_ci_curve(curves, num_resamples=num_resamples)
        ax.fill_between(x, low, high, color=line.get_color(), alpha=alpha, label=band_label,
                        zorder=line.get_zorder() - 0.1)
    return line


def _linear_map(xp: np.ndarray, fp: np.ndarray):
    """Piecewise-linear ``xp -> fp``, continued past both ends along the end segments (so
    the top axis's ticks stay right in the plot's margins)."""
    def f(v):
        v = np.asarray(v, np.float64)
        out = np.interp(v, xp, fp)
        out = np.where(v < xp[0], fp[0] + (v - xp[0]) * (fp[1] - fp[0]) / (xp[1] - xp[0]), out)
        return np.where(v > xp[-1],
                        fp[-1] + (v - xp[-1]) * (fp[-1] - fp[-2]) / (xp[-1] - xp[-2]), out)
    return f


def plot_curves(curves: np.ndarray, path: Path, title: str, ylabel: str = "episode return",
                diverged: np.ndarray | None = None, *, env_steps: np.ndarray) -> None:
    """Mean over finite seeds with a 95% bootstrap band, plus each seed faintly, against
    cumulative env steps (``curves_figure``); written to ``path``."""
    fig = curves_figure(curves, env_steps, title, ylabel, diverged)
    fig.savefig(path)
    pyplot().close(fig)


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend (no display needed): every
    figure of this package and its benchmarks is drawn through it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
