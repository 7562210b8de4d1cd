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


def make_optimizer(name: str = "adam", separate_value: bool = False
                   ) -> optax.GradientTransformation:
    """Adam or plain SGD whose learning rate lives in the state (traced, vmappable).

    ``optax.adam`` equals ``torch.optim.Adam`` (no weight decay) to float64 round-off.
    Set the rate with ``set_learning_rate(state, lr)`` before ``update``.
    SGD keeps the gradient's magnitude, which Adam's per-parameter scaling discards: on a
    tabular policy a parameter that is rarely hit gets a near full step from any one
    sample, whatever its advantage.

    ``separate_value=True`` gives the value network's parameters (``value_labels``) an
    optimizer state and a learning rate of their own, as two torch optimizers would: set
    both with ``set_learning_rate(state, lr, value_lr)``.
    """
    makers = {"adam": optax.adam, "sgd": optax.sgd}
    if name not in makers:
        raise ValueError(f"optimizer={name!r}; allowed: {', '.join(makers)}")
    one = optax.inject_hyperparams(makers[name])(learning_rate=1e-3)
    if not separate_value:
        return one
    return optax.multi_transform({"policy": one, "value": one}, value_labels)


def value_labels(params: Any) -> Any:
    """"value" for the parameters of the value network or head (flax modules named
    ``value`` and ``value_hidden_i``), "policy" for the rest."""
    def label(path, _):
        names = [getattr(k, "key", None) for k in path]
        return "value" if any(isinstance(n, str) and n.startswith("value") for n in names) \
            else "policy"
    return jax.tree_util.tree_map_with_path(label, params)


def set_learning_rate(opt_state: Any, learning_rate: Any, value_learning_rate: Any = None
                      ) -> Any:
    """Put (traced) learning rates into a ``make_optimizer`` state. With a separate value
    optimizer, ``value_learning_rate`` (default: ``learning_rate``) goes to its state."""
    if isinstance(opt_state, optax.transforms.PartitionState):
        value_lr = learning_rate if value_learning_rate is None else value_learning_rate
        inner = opt_state.inner_states
        return opt_state._replace(inner_states={
            "policy": inner["policy"]._replace(
                inner_state=set_learning_rate(inner["policy"].inner_state, learning_rate)),
            "value": inner["value"]._replace(
                inner_state=set_learning_rate(inner["value"].inner_state, value_lr))})
    old = opt_state.hyperparams["learning_rate"]
    hyper = {**opt_state.hyperparams, "learning_rate": jnp.asarray(learning_rate, old.dtype)}
    return opt_state._replace(hyperparams=hyper)
