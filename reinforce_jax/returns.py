"""Monte-Carlo return computations on time-major arrays ``[T, ...]``.

Every function works on one rollout whose leading axis is time; trailing axes (envs,
seeds) are carried along elementwise, so nothing here mixes environments or seeds
except ``normalize``, which pools exactly the elements it is given.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def discounted_returns(
    rewards: jax.Array,
    dones: jax.Array,
    gamma: float | jax.Array,
    bootstrap: jax.Array | None = None,
) -> jax.Array:
    """Reward-to-go ``G_t = r_t + gamma * (1 - done_t) * G_{t+1}``, ``G_T = bootstrap``.

    ``done_t`` marks that the episode ended *at* step t (terminated or truncated), so
    nothing after it flows back into ``G_t``. To bootstrap a truncated step, add
    ``gamma * V(final_obs)`` to its reward before calling (see ``rollout``).

    Args:
      rewards: float array [T, ...].
      dones: bool or float array [T, ...].
      gamma: discount in [0, 1]; may be traced.
      bootstrap: value of the state after the last step, [...]; 0 when None.

    Returns:
      float array [T, ...] with the dtype of ``rewards``.
    """
    rewards = jnp.asarray(rewards)
    not_done = 1.0 - jnp.asarray(dones, rewards.dtype)
    if bootstrap is None:
        bootstrap = jnp.zeros(rewards.shape[1:], rewards.dtype)
    gamma = jnp.asarray(gamma, rewards.dtype)

    def step(G_next, inputs):
        r, nd = inputs
        G = r + gamma * nd * G_next
        return G, G

    _, G = jax.lax.scan(step, jnp.asarray(bootstrap, rewards.dtype), (rewards, not_done),
                        reverse=True)
    return G


def episode_start_values(x: jax.Array, dones: jax.Array) -> jax.Array:
    """Broadcast each episode's first value over the episode: [T, ...] -> [T, ...].

    Applied to reward-to-go this gives the whole-episode return ``G_0`` at every step
    (the "total return" REINFORCE estimator). Step 0 of the window counts as a start.
    """
    dones = jnp.asarray(dones, bool)
    starts = jnp.concatenate([jnp.ones_like(dones[:1]), dones[:-1]], axis=0)

    def step(carry, inputs):
        value, is_start = inputs
        carry = jnp.where(is_start, value, carry)
        return carry, carry

    _, out = jax.lax.scan(step, x[0], (x, starts))
    return out


def normalize(x: jax.Array, mask: jax.Array | None = None, eps: float = 1e-8) -> jax.Array:
    """``(x - mean) / (std + eps)`` over the valid elements, std unbiased (ddof=1).

    The unbiased std matches torch's ``Tensor.std()``. With fewer than two valid
    elements the std is undefined (torch returns NaN and poisons the update), so ``x``
    is returned unchanged. Invalid elements are returned unchanged too.

    Args:
      x: float array of any shape.
      mask: bool/float array broadcastable to ``x``; all valid when None.
      eps: added to the std.

    Returns:
      float array shaped like ``x``.
    """
    x = jnp.asarray(x)
    w = jnp.ones_like(x) if mask is None else jnp.broadcast_to(jnp.asarray(mask, x.dtype), x.shape)
    n = jnp.sum(w)
    mean = jnp.sum(w * x) / jnp.maximum(n, 1.0)
    var = jnp.sum(w * jnp.square(x - mean)) / jnp.maximum(n - 1.0, 1.0)
    out = (x - mean) / (jnp.sqrt(var) + eps)
    return jnp.where((n >= 2) & (w > 0), out, x)


def discount_weights(step_in_episode: jax.Array, gamma: float | jax.Array) -> jax.Array:
    """``gamma ** t`` with t the step index inside its episode.

    This is the weighting of the gamma^t update (Sutton & Barto's REINFORCE).
    """
    return jnp.power(jnp.asarray(gamma, jnp.result_type(float)), step_in_episode)


def finished_mask(dones: jax.Array) -> jax.Array:
    """True where the step's episode ends inside the window: [T, ...] -> bool [T, ...].

    Steps after the last ``done`` of a column belong to an episode whose return is
    unknown; without a baseline to bootstrap from, REINFORCE must drop them.
    """
    dones = jnp.asarray(dones, bool)
    later_done = jax.lax.cummax(dones[::-1].astype(jnp.int32), axis=0)[::-1]
    return later_done.astype(bool)


def leave_one_out_mean(x: jax.Array, mask: jax.Array, group_size: int) -> jax.Array:
    """Mean of the *other* valid members of each env's group, at the same step.

    Envs ``[g*k, g*k + group_size)`` form group k along axis 1. Used as a baseline
    (RLOO, Kool et al. 2019) it is unbiased, since no member's value depends on the
    env's own actions. Where no other member is valid the baseline is 0.

    Args:
      x: float array [T, N, ...] with N a multiple of ``group_size``.
      mask: bool/float array [T, N, ...].
      group_size: members per group, >= 2.

    Returns:
      float array shaped like ``x``; 0 where ``mask`` is false.
    """
    x = jnp.asarray(x)
    w = jnp.broadcast_to(jnp.asarray(mask, x.dtype), x.shape)
    T, N = x.shape[:2]
    grouped = (T, N // group_size, group_size) + x.shape[2:]
    total = jnp.sum((w * x).reshape(grouped), axis=2, keepdims=True)
    count = jnp.sum(w.reshape(grouped), axis=2, keepdims=True)
    others = jnp.broadcast_to(count, grouped).reshape(x.shape) - w
    sums = jnp.broadcast_to(total, grouped).reshape(x.shape) - w * x
    return jnp.where((others > 0) & (w > 0), sums / jnp.maximum(others, 1.0), 0.0)
