"""REINFORCE losses: the plain ``-log_prob * G`` term and the full objective.

Each loss takes time-major arrays ``[T, ...]`` with an optional validity mask and a
reduction: "mean" divides by the number of valid elements, "sum" does not (the reference
systems use both; they differ in gradient scale by the number of elements).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp

Reduction = Literal["mean", "sum"]


def _reduce(x: jax.Array, mask: jax.Array | None, reduction: Reduction) -> jax.Array:
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}; allowed: 'mean', 'sum'")
    if mask is None:
        return jnp.sum(x) / (x.size if reduction == "mean" else 1)
    w = jnp.broadcast_to(jnp.asarray(mask, x.dtype), x.shape)
    total = jnp.sum(w * x)
    if reduction == "sum":
        return total
    return total / jnp.maximum(jnp.sum(w), 1.0)


def reinforce_loss(
    log_probs: jax.Array,
    returns: jax.Array,
    mask: jax.Array | None = None,
    reduction: Reduction = "mean",
) -> jax.Array:
    """Williams' REINFORCE surrogate ``-sum mask * log_prob * stop_gradient(G)``.

    Its gradient is the Monte-Carlo policy-gradient estimate (Williams 1992; Sutton &
    Barto 13.3), negated for a minimizer.

    Args:
      log_probs: float array [T, ...], ``log pi(a_t | s_t)``.
      returns: float array [T, ...], the weights (returns, advantages, gamma^t G).
      mask: 1 for valid steps, 0 for padding, [T, ...]; all valid when None.
      reduction: "mean" (divide by the number of valid elements) or "sum".

    Returns:
      float scalar.
    """
    return _reduce(-log_probs * jax.lax.stop_gradient(returns), mask, reduction)


def reinforce_objective(
    log_probs: jax.Array,
    returns: jax.Array,
    entropy: jax.Array,
    mask: jax.Array | None = None,
    values: jax.Array | None = None,
    weights: jax.Array | None = None,
    ent_coef: float | jax.Array = 0.0,
    vf_coef: float | jax.Array = 0.5,
    reduction: Reduction = "mean",
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """REINFORCE with optional baseline and entropy bonus.

    ``loss = pg + vf_coef * MSE(V, G) - ent_coef * H`` where ``pg`` is
    ``reinforce_loss`` on the advantage ``G - stop_gradient(V)`` (or ``G`` without a
    baseline), scaled elementwise by ``weights`` (e.g. gamma^t) when given. The value
    and entropy terms use the same mask and reduction as the policy term.

    Args:
      log_probs, returns, entropy: float arrays [T, ...].
      mask: validity [T, ...] or None.
      values: baseline V(s_t) [T, ...] or None for no baseline.
      weights: per-step multipliers of the advantage [T, ...] or None.
      ent_coef, vf_coef: coefficients; may be traced.
      reduction: "mean" or "sum".

    Returns:
      ``(loss, metrics)`` with metrics ``pg_loss``, ``value_loss``, ``entropy``.
    """
    advantages = returns if values is None else returns - jax.lax.stop_gradient(values)
    if weights is not None:
        advantages = advantages * weights
    pg = reinforce_loss(log_probs, advantages, mask, reduction)
    ent = _reduce(entropy, mask, reduction)
    if values is None:
        v_loss = jnp.zeros((), pg.dtype)
    else:
        v_loss = _reduce(jnp.square(values - jax.lax.stop_gradient(returns)), mask, reduction)
    loss = pg + vf_coef * v_loss - ent_coef * ent
    return loss, {"pg_loss": pg, "value_loss": v_loss, "entropy": ent}
