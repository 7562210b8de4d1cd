"""Log-probabilities, entropies and samplers for the two policy families we support.

Categorical distributions are parameterized by logits (never by probabilities: torch's
``Categorical(probs=...)`` renormalizes and clamps, which changes the gradient; see
``clamped_probs_log_prob`` for that form). Gaussians are diagonal, parameterized by
``(mean, log_std)``, with log-probs and entropies summed over the last (action) axis.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def categorical_log_prob(logits: jax.Array, actions: jax.Array) -> jax.Array:
    """Log-probability of integer ``actions`` under ``Categorical(logits)``.

    Args:
      logits: float array [..., A]; entries may be -inf (impossible actions).
      actions: int array [...].

    Returns:
      float array [...]: ``log_softmax(logits)[..., actions]``.
    """
    log_p = jax.nn.log_softmax(logits, axis=-1)
    return jnp.take_along_axis(log_p, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]


def categorical_entropy(logits: jax.Array) -> jax.Array:
    """Entropy ``-sum p log p`` of ``Categorical(logits)``, finite with -inf logits.

    A -inf logit has p = 0 and log p = -inf; ``0 * -inf`` is NaN in value and gradient,
    so those terms are replaced by 0 *before* the product (the double-``where`` trick),
    which keeps the gradient finite too. Matches torch, which clamps logits instead.

    Args:
      logits: float array [..., A].

    Returns:
      float array [...].
    """
    log_p = jax.nn.log_softmax(logits, axis=-1)
    p = jnp.exp(log_p)
    safe_log_p = jnp.where(p > 0, log_p, 0.0)
    return -jnp.sum(p * safe_log_p, axis=-1)


def clamped_probs_log_prob(
    logits: jax.Array, actions: jax.Array, min_prob: float = 1e-6
) -> jax.Array:
    """``log(clamp(softmax(logits)[a], min_prob))``: the DigitMatch bandit's probability form.

    The clamp has zero gradient below ``min_prob`` (as ``torch.clamp``), so this is
    *not* the logits log-prob; it exists for parity with code written that way.

    Args:
      logits: float array [..., A].
      actions: int array [...].
      min_prob: lower clamp applied to the probability before the log.

    Returns:
      float array [...].
    """
    p = jax.nn.softmax(logits, axis=-1)
    p_a = jnp.take_along_axis(p, actions[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.log(jnp.maximum(p_a, min_prob))


def clamped_probs_entropy(logits: jax.Array, min_prob: float = 1e-6) -> jax.Array:
    """``-sum p * log(clamp(p, min_prob))``, [..., A] -> [...].

    The DigitMatch bandit's entropy form.
    """
    p = jax.nn.softmax(logits, axis=-1)
    return -jnp.sum(p * jnp.log(jnp.maximum(p, min_prob)), axis=-1)


def normal_log_prob(mean: jax.Array, log_std: jax.Array, actions: jax.Array) -> jax.Array:
    """Log-density of a diagonal Gaussian, summed over the last axis.

    Written as ``z = (a - mean) * exp(-log_std)`` so extreme log-stds (e.g. -20) neither
    divide by an underflowed variance nor overflow.

    Args:
      mean, log_std, actions: float arrays [..., D] (broadcastable).

    Returns:
      float array [...].
    """
    z = (actions - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * jnp.square(z) - log_std - _HALF_LOG_2PI, axis=-1)


def normal_entropy(log_std: jax.Array) -> jax.Array:
    """Entropy of a diagonal Gaussian, summed over the last axis: [..., D] -> [...]."""
    return jnp.sum(0.5 + _HALF_LOG_2PI + log_std, axis=-1)


def sample_categorical(key: jax.Array, logits: jax.Array) -> jax.Array:
    """One action per row of ``logits`` [..., A] -> int32 [...]; the same draw as
    ``jax.random.categorical(key, logits)``."""
    return categorical_from_noise(logits, categorical_noise(key, logits))


def categorical_noise(key: jax.Array, logits: jax.Array) -> jax.Array:
    """The Gumbel noise ``jax.random.categorical(key, logits)`` adds (``logits`` may be a
    ``jax.ShapeDtypeStruct``: only its shape and dtype are read)."""
    return jax.random.gumbel(key, logits.shape, logits.dtype)


def categorical_from_noise(logits: jax.Array, noise: jax.Array) -> jax.Array:
    """The Gumbel-max sample: ``argmax(logits + noise)`` over the last axis, int32."""
    return jnp.argmax(noise + logits, axis=-1).astype(jnp.int32)


def sample_normal(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """One draw from ``N(mean, exp(log_std)^2)``, shape of ``mean`` [..., D]."""
    return normal_from_noise(mean, log_std, normal_noise(key, mean))


def normal_noise(key: jax.Array, mean: jax.Array) -> jax.Array:
    """Standard normal noise shaped like ``mean`` (an array or a ``ShapeDtypeStruct``)."""
    return jax.random.normal(key, mean.shape, dtype=mean.dtype)


def normal_from_noise(mean: jax.Array, log_std: jax.Array, noise: jax.Array) -> jax.Array:
    return mean + jnp.exp(log_std) * noise
