"""Statistics over seeds: mean, interquartile mean and bootstrap confidence intervals.

Everything here takes one value per seed (NaNs from diverged seeds must be removed by
the caller, who reports how many) and uses a seeded numpy generator, so the numbers
in a summary are reproducible.
"""

from __future__ import annotations

import numpy as np

FINAL_WINDOW = 10  # final return = mean episode return over this many last updates


def final_return(curves: np.ndarray, updates: int | None = None,
                 window: int = FINAL_WINDOW) -> np.ndarray:
    """Final return: the mean of each run's last ``window`` values among its first
    ``updates`` (the updates it did; a sweep pads shorter runs with NaN).

    Args:
      curves: [..., U] mean episode return per update.
      updates: updates done, <= U; default U.
    Returns:
      [...]; NaN for runs with no update. Diverged runs are the caller's to mask.
    """
    curves = np.asarray(curves, np.float64)
    done = curves.shape[-1] if updates is None else int(updates)
    if done == 0:
        return np.full(curves.shape[:-1], np.nan)
    return curves[..., max(0, done - window):done].mean(axis=-1)


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    x = np.sort(np.asarray(x, np.float64), axis=axis)
    n = x.shape[axis]
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def bootstrap_ci(
    x: np.ndarray,
    statistic=np.mean,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap CI of ``statistic`` over a 1-D sample of seeds."""
    x = np.asarray(x, np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"bootstrap_ci needs a non-empty 1-D sample; got shape {x.shape}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(num_resamples, x.size))
    stats = statistic(x[idx], axis=-1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def bootstrap_ci_curve(
    curves: np.ndarray, confidence: float = 0.95, num_resamples: int = 1000, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise bootstrap CI of the mean of ``curves`` [seeds, steps] -> two [steps]."""
    curves = np.asarray(curves, np.float64)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, curves.shape[0], size=(num_resamples, curves.shape[0]))
    means = curves[idx].mean(axis=1)  # [resamples, steps]
    alpha = (1.0 - confidence) / 2.0
    return np.quantile(means, alpha, axis=0), np.quantile(means, 1.0 - alpha, axis=0)


def summarize(values: np.ndarray) -> dict[str, float | int]:
    """Mean, IQM and 95% bootstrap CI of the mean over the finite values."""
    values = np.asarray(values, np.float64)
    finite = values[np.isfinite(values)]
    out: dict[str, float | int] = {"n": int(finite.size),
                                   "excluded": int(values.size - finite.size)}
    if finite.size == 0:
        return out
    low, high = bootstrap_ci(finite) if finite.size > 1 else (float(finite[0]),) * 2
    out.update(mean=float(finite.mean()), iqm=float(iqm(finite)), ci_low=low, ci_high=high)
    return out


def stratified_bootstrap_ci(
    scores: list[np.ndarray] | np.ndarray,
    statistic=np.mean,
    confidence: float = 0.95,
    num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile CI of ``statistic`` over the pooled scores of several tasks, resampling
    runs with replacement *within* each task (rliable's stratified bootstrap).

    Args:
      scores: one 1-D array of per-seed scores per task (or a [seeds, tasks] array).
        With one task this is the ordinary bootstrap.
    """
    if isinstance(scores, np.ndarray) and scores.ndim == 2:
        scores = [scores[:, t] for t in range(scores.shape[1])]
    scores = [np.asarray(s, np.float64) for s in scores]
    if not scores or any(s.ndim != 1 or s.size == 0 for s in scores):
        raise ValueError("stratified_bootstrap_ci needs one non-empty 1-D sample per task")
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([s[rng.integers(0, s.size, size=(num_resamples, s.size))]
                             for s in scores], axis=1)
    stats = statistic(pooled, axis=-1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(low), float(high)


def probability_of_improvement(
    x: np.ndarray, y: np.ndarray, confidence: float = 0.95, num_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """P(X > Y) for one run of X against one run of Y (ties count one half), with a
    bootstrap CI resampling both sets of seeds: (estimate, low, high)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 1 or y.ndim != 1 or x.size == 0 or y.size == 0:
        raise ValueError("probability_of_improvement needs two non-empty 1-D samples")

    def poi(a, b):  # a [..., n], b [..., m] -> [...]
        diff = a[..., :, None] - b[..., None, :]
        return ((diff > 0) + 0.5 * (diff == 0)).mean(axis=(-2, -1))

    rng = np.random.default_rng(seed)
    xs = x[rng.integers(0, x.size, size=(num_resamples, x.size))]
    ys = y[rng.integers(0, y.size, size=(num_resamples, y.size))]
    boots = np.concatenate([poi(xs[i:i + 100], ys[i:i + 100])
                            for i in range(0, num_resamples, 100)])
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(boots, [alpha, 1.0 - alpha])
    return float(poi(x, y)), float(low), float(high)
