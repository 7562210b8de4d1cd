"""Sutton & Barto's REINFORCE as written: one optimizer step per time step.

This is the update of the per-step CartPole agent, one of the reference systems.

For step t of a finished episode, in order, minimise ``-w_t * G_t * log pi(A_t|S_t)`` and
take one optimizer step before moving to t+1 (so later steps see updated parameters).
The vectorized trainer in ``train.py`` takes one step per batch instead; this module
exists for faithfulness and parity, not speed.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import optax

from reinforce_jax.distributions import categorical_log_prob
from reinforce_jax.losses import reinforce_loss
from reinforce_jax.optim import clip_by_global_norm_torch


def per_step_updates(
    logits_fn: Callable[[Any, jax.Array], jax.Array],
    tx: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
    obs: jax.Array,
    actions: jax.Array,
    returns: jax.Array,
    weights: jax.Array | None = None,
    max_grad_norm: float | None = None,
    mask: jax.Array | None = None,
) -> tuple[Any, Any]:
    """Apply ``T`` sequential single-step REINFORCE updates.

    Args:
      logits_fn: ``(params, obs [1, ...]) -> logits [1, A]``.
      tx: the optimizer (e.g. ``optax.adam(1e-3)``).
      obs: [T, ...]; actions: int [T]; returns: G_t [T], computed once from the episode.
      weights: optional per-step factor [T] (gamma^t in Sutton & Barto's pseudocode).
      max_grad_norm: torch-style clip per step, or None.
      mask: optional bool [T]; a False step (padding after the episode ended) leaves
        parameters and optimizer state untouched.

    Returns:
      ``(params, opt_state)`` after the episode.
    """
    weights = jnp.ones_like(returns) if weights is None else weights
    mask = jnp.ones(returns.shape, bool) if mask is None else mask

    def one(carry, step):
        params, opt_state = carry
        o, a, g, w, m = step

        def loss(p):
            log_prob = categorical_log_prob(logits_fn(p, o[None]), a[None])
            return reinforce_loss(log_prob, (w * g)[None], reduction="sum")

        grads = jax.grad(loss)(params)
        if max_grad_norm is not None:
            grads = clip_by_global_norm_torch(grads, max_grad_norm)[0]
        updates, new_opt_state = tx.update(grads, opt_state, params)
        new = (optax.apply_updates(params, updates), new_opt_state)
        return jax.tree.map(lambda n, o: jnp.where(m, n, o), new, (params, opt_state)), None

    (params, opt_state), _ = jax.lax.scan(one, (params, opt_state),
                                          (obs, actions, returns, weights, mask))
    return params, opt_state
