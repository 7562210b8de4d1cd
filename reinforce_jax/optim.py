"""Optimizer pieces: a global-norm clip that matches torch, and the Adam we train with."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


def clip_by_global_norm_torch(grads: Any, max_norm: float | jax.Array) -> tuple[Any, jax.Array]:
    """Scale ``grads`` by ``min(max_norm / (norm + 1e-6), 1)``, as torch does.

    Hand-written because ``optax.clip_by_global_norm`` omits torch's 1e-6, which limits
    float64 agreement with ``torch.nn.utils.clip_grad_norm_`` to ~1e-7.
    Call it on one seed's gradient tree: under ``vmap`` each seed has its own norm.

    Returns:
      ``(clipped_grads, norm)`` with ``norm`` the pre-clip global L2 norm.
    """
    norm = optax.global_norm(grads)
    scale = jnp.minimum(max_norm / (norm + 1e-6), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads), norm


class _ClipState(NamedTuple):
    pass


def torch_clip_by_global_norm(max_norm: float) -> optax.GradientTransformation:
    """``clip_by_global_norm_torch`` as an optax transformation, for ``optax.chain``."""

    def init_fn(params):
        del params
        return _ClipState()

    def update_fn(updates, state, params=None):
        del params
        return clip_by_global_norm_torch(updates, max_norm)[0], state

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(name: str = "adam") -> optax.GradientTransformation:
    """Adam or plain SGD whose learning rate lives in the state (traced, vmappable).

    ``optax.adam`` equals ``torch.optim.Adam`` (no weight decay) to float64 round-off.
    Set the rate with ``state.hyperparams["learning_rate"] = lr`` before ``update``.
    SGD keeps the gradient's magnitude, which Adam's per-parameter scaling discards: on a
    tabular policy a parameter that is rarely hit gets a near full step from any one
    sample, whatever its advantage.
    """
    makers = {"adam": optax.adam, "sgd": optax.sgd}
    if name not in makers:
        raise ValueError(f"optimizer={name!r}; allowed: {', '.join(makers)}")
    return optax.inject_hyperparams(makers[name])(learning_rate=1e-3)

