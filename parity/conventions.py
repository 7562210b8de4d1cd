"""A JAX REINFORCE loss whose torch-vs-JAX conventions are switches.

A port of a PyTorch REINFORCE script has to copy a handful of conventions the torch code
fixes silently: which std normalizes the returns, how ``clip_grad_norm_`` divides, whether
log-probabilities come from probabilities or logits, sum or mean, the gamma^t weight, the
baseline's ``.detach()``, the weight layout. ``Conventions`` names each one, so that
``parity.compare`` can flip them one at a time and say which flip makes a port agree with
its torch original (README, "Parity with PyTorch").

The loss pieces here take one batch of equal-length episodes, time-major: ``[T]`` or
``[T, N]``, every episode starting at t = 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

import jax
import jax.numpy as jnp

from reinforce_jax import distributions as D
from reinforce_jax import returns as R


@dataclass(frozen=True)
class Conventions:
    """The conventions a torch REINFORCE script fixes; the defaults are torch's and the
    common script's."""

    std_ddof: Literal[0, 1] = 1
    """Return normalization's std: 1 is torch's ``Tensor.std()``, 0 is ``np.std``/``jnp.std``."""
    norm_eps: float = 1e-8
    """Added to the std in ``(G - mean) / (std + eps)``."""
    clip_eps: float = 1e-6
    """``clip_grad_norm_`` scales by ``max_norm / (norm + 1e-6)``; optax's clip has 0."""
    log_prob: Literal["logits", "probs"] = "logits"
    """"logits": ``log_softmax``; "probs": ``Categorical(probs=softmax(x))``, which
    renormalizes and clamps the probabilities to [eps, 1 - eps] of the dtype."""
    reduction: Literal["mean", "sum"] = "mean"
    """How the per-step terms ``-log_prob * A`` are reduced."""
    gamma_t: bool = False
    """Weight step t's term by gamma^t (Sutton & Barto 13.3)."""
    stop_gradient: bool = True
    """Detach the baseline in the advantage ``G - V``."""
    weight_layout: Literal["in_out", "out_in"] = "in_out"
    """How square torch ``Linear`` weights are copied: transposed into flax's [in, out]
    kernel, or as they are ([out, in]). Non-square weights are always transposed."""


TORCH = Conventions()

# what each convention's non-default value means, for the trap detector's messages
EXPLAIN = {
    ("std_ddof", 0): "returns normalized with the biased std (ddof=0: np.std, jnp.std, "
                     "Tensor.std(unbiased=False))",
    ("std_ddof", 1): "returns normalized with the unbiased std (ddof=1: torch's Tensor.std())",
    ("clip_eps", 0.0): "the gradient clipped by max_norm / norm, without torch's +1e-6 "
                       "(optax.clip_by_global_norm, a hand-written clip)",
    ("clip_eps", 1e-6): "the gradient clipped by max_norm / (norm + 1e-6), as "
                        "torch.nn.utils.clip_grad_norm_",
    ("log_prob", "probs"): "log-probabilities from Categorical(probs=softmax(x)), which "
                           "clamps probabilities below the dtype's eps (no gradient there)",
    ("log_prob", "logits"): "log-probabilities from the logits (log_softmax, "
                            "Categorical(logits=x))",
    ("reduction", "sum"): "the per-step terms summed (.sum()), not averaged",
    ("reduction", "mean"): "the per-step terms averaged (.mean()), not summed",
    ("gamma_t", True): "each step's term weighted by gamma^t (Sutton & Barto 13.3)",
    ("gamma_t", False): "no gamma^t weight on the steps' terms",
    ("stop_gradient", False): "the baseline not detached in the advantage (G - V without "
                              ".detach()): the policy term's gradient reaches the value",
    ("stop_gradient", True): "the baseline detached in the advantage (G - V.detach())",
    ("weight_layout", "out_in"): "square weight matrices read as [out, in] on one side and "
                                 "[in, out] on the other (x @ W where nn.Linear does x @ W.T)",
    ("weight_layout", "in_out"): "weights in their usual layouts (torch [out, in], flax "
                                 "[in, out])",
}

FLIPS = {"std_ddof": {1: 0, 0: 1}, "clip_eps": {1e-6: 0.0, 0.0: 1e-6},
         "log_prob": {"logits": "probs", "probs": "logits"},
         "reduction": {"mean": "sum", "sum": "mean"}, "gamma_t": {False: True, True: False},
         "stop_gradient": {True: False, False: True},
         "weight_layout": {"in_out": "out_in", "out_in": "in_out"}}


def flipped(base: Conventions, field: str) -> Conventions:
    """``base`` with one convention switched to its other value (``FLIPS``)."""
    value = getattr(base, field)
    if value not in FLIPS[field]:
        raise ValueError(f"{field}={value!r} has no known counterpart; allowed: "
                         f"{', '.join(map(repr, FLIPS[field]))}")
    return dataclasses.replace(base, **{field: FLIPS[field][value]})


def normalize_returns(G: jax.Array, conventions: Conventions = TORCH) -> jax.Array:
    """``(G - mean) / (std + norm_eps)`` over every element of ``G``, std with the
    convention's ddof. ddof=1 is ``reinforce_jax.returns.normalize`` (fewer than two
    elements: returned unchanged, where torch gives NaN).

    Args:
      G: float array [T] or [T, N].

    Returns:
      float array shaped like ``G``.
    """
    if conventions.std_ddof == 1:
        return R.normalize(G, eps=conventions.norm_eps)
    return (G - G.mean()) / (jnp.std(G) + conventions.norm_eps)


def categorical_log_prob(logits: jax.Array, actions: jax.Array,
                         conventions: Conventions = TORCH) -> jax.Array:
    """``log pi(a | s)`` from logits [..., A] and int actions [...] -> [...].

    "probs" reproduces ``Categorical(probs=softmax(logits)).log_prob(a)``: the
    probabilities are renormalized and clamped to [eps, 1 - eps] before the log, so an
    action whose probability is below eps has no gradient.
    """
    if conventions.log_prob == "logits":
        return D.categorical_log_prob(logits, actions)
    p = jax.nn.softmax(logits, axis=-1)
    p = p / p.sum(-1, keepdims=True)
    eps = jnp.finfo(p.dtype).eps
    p_a = jnp.take_along_axis(p, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.log(jnp.clip(p_a, eps, 1 - eps))


def discounted_returns(rewards: jax.Array, gamma: float) -> jax.Array:
    """Reward-to-go of episodes that start at t = 0 and end at T: [T] or [T, N] -> same.

    ``G_t = sum_{k >= t} gamma^(k - t) r_k`` as one product with a [T, T] triangular
    matrix: the same numbers as ``reinforce_jax.returns.discounted_returns`` (its scan) to
    round-off, and fast without jit, where a scan would compile on every call.
    """
    T = rewards.shape[0]
    t = jnp.arange(T)
    powers = jnp.power(jnp.asarray(gamma, rewards.dtype), jnp.maximum(t[None, :] - t[:, None], 0))
    D = jnp.where(t[None, :] >= t[:, None], powers, 0.0).astype(rewards.dtype)
    return jnp.tensordot(D, rewards, axes=1)


def reinforce_loss(log_probs: jax.Array, rewards: jax.Array, gamma: float,
                   conventions: Conventions = TORCH, values: jax.Array | None = None,
                   vf_coef: float = 0.5, normalize: bool = True) -> jax.Array:
    """A torch script's REINFORCE loss: ``reduce(-log_prob * A) + vf_coef * MSE(V, G)``.

    ``G`` is the discounted reward-to-go of each episode (normalized when ``normalize``),
    ``A = G - V`` with a baseline (``V`` detached unless ``conventions.stop_gradient`` is
    off) or ``G`` without, times gamma^t when ``conventions.gamma_t``. The value term is
    ``F.mse_loss``'s mean, whatever the reduction.

    Args:
      log_probs: float [T] or [T, N], ``log pi(a_t | s_t)``.
      rewards: float [T] or [T, N].
      gamma: discount.
      conventions: the switches (``TORCH`` by default).
      values: baseline V(s_t) shaped like ``rewards``, or None.
      vf_coef: weight of the value term.
      normalize: normalize G (``normalize_returns``).

    Returns:
      float scalar.
    """
    T = rewards.shape[0]
    G = discounted_returns(rewards, gamma)
    if normalize:
        G = normalize_returns(G, conventions)
    A = G
    if values is not None:
        A = G - (jax.lax.stop_gradient(values) if conventions.stop_gradient else values)
    if conventions.gamma_t:
        w = R.discount_weights(jnp.arange(T), gamma).astype(A.dtype)
        A = A * w.reshape((T,) + (1,) * (A.ndim - 1))
    terms = -log_probs * A
    loss = terms.sum() if conventions.reduction == "sum" else terms.mean()
    if values is not None:
        loss = loss + vf_coef * jnp.mean(jnp.square(values - G))
    return loss
