"""Flax policies: a categorical policy over logits and a diagonal Gaussian policy.

Both return ``(dist_params, value)``: ``dist_params`` is the logits [..., A] or the pair
``(mean, log_std)`` [..., D]; ``value`` is [...] or None without a baseline. Layer names
are fixed (``hidden_i``, ``logits``/``mean``/``log_std``, ``value_hidden_i``, ``value``)
because the parity suite maps torch state_dicts onto them.
"""

from __future__ import annotations

from typing import Callable, Literal, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
}
ValueHead = Literal["none", "shared", "separate"]


def orthogonal(scale: float = 1.0):
    """flax's orthogonal initializer, drawn one matrix at a time under ``vmap``.

    Vmapping the init over many seeds otherwise becomes one batched QR, and jaxlib's
    batched QR kernel (its parallel batch map) was seen to deadlock on this 2-core CPU
    host for 128 runs; a ``lax.map`` over the batch gives the same matrices without it.
    """
    base = nn.initializers.orthogonal(scale)

    def init(key, shape, dtype=jnp.float32):
        @jax.custom_batching.custom_vmap
        def draw(k):
            return base(k, shape, dtype)

        @draw.def_vmap
        def _one_at_a_time(axis_size, in_batched, keys):
            return jax.lax.map(draw, keys), True

        return draw(key)

    return init


def _dense(features: int, scale: float, name: str, use_bias: bool = True) -> nn.Dense:
    # Orthogonal init with a small policy-head scale starts near a uniform policy,
    # which REINFORCE needs: a confident random policy explores badly.
    return nn.Dense(features, kernel_init=orthogonal(scale), use_bias=use_bias,
                    bias_init=nn.initializers.zeros, name=name)


def _trunk(x: jax.Array, sizes: Sequence[int], activation: str, prefix: str) -> jax.Array:
    act = ACTIVATIONS[activation]
    for i, h in enumerate(sizes):
        x = act(_dense(h, float(np.sqrt(2.0)), f"{prefix}{i}")(x))
    return x


def _value(obs: jax.Array, features: jax.Array, module: nn.Module) -> jax.Array | None:
    if module.value_head == "none":
        return None
    if module.value_head == "shared":
        base = features
    else:
        base = _trunk(obs, module.hidden_sizes, module.activation, "value_hidden_")
    return _dense(1, 1.0, "value")(base)[..., 0]


class DiscretePolicy(nn.Module):
    """MLP -> logits over ``action_dim`` actions, with an optional value head.

    ``hidden_sizes=()`` gives a linear softmax policy (as in the per-step CartPole agent);
    with one-hot observations and ``head_bias=False`` that is a table of logits.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    value_head: ValueHead = "none"
    head_bias: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array):
        features = _trunk(obs, self.hidden_sizes, self.activation, "hidden_")
        logits = _dense(self.action_dim, 0.01, "logits", self.head_bias)(features)
        return logits, _value(obs, features, self)


class GaussianPolicy(nn.Module):
    """MLP -> mean, with log-std state-dependent (clamped) or a free parameter.

    ``log_std_mode="state"``: a ``log_std`` head on the features, clipped to
    ``[log_std_min, log_std_max]`` (default [-20, 2], as in the LineWalk agents; the clip
    passes no gradient outside the range, like ``torch.clamp``). ``"free"``: one learned
    parameter per action dimension, initialised to ``log_std_init``.
    """

    action_dim: int
    hidden_sizes: Sequence[int] = (64, 64)
    activation: str = "tanh"
    value_head: ValueHead = "none"
    log_std_mode: Literal["state", "free"] = "state"
    log_std_min: float = -20.0
    log_std_max: float = 2.0
    log_std_init: float = 0.0
    head_bias: bool = True

    @nn.compact
    def __call__(self, obs: jax.Array):
        features = _trunk(obs, self.hidden_sizes, self.activation, "hidden_")
        mean = _dense(self.action_dim, 0.01, "mean", self.head_bias)(features)
        if self.log_std_mode == "state":
            raw = _dense(self.action_dim, 0.01, "log_std")(features)
            log_std = jnp.clip(raw + self.log_std_init, self.log_std_min, self.log_std_max)
        else:
            param = self.param("log_std", nn.initializers.constant(self.log_std_init),
                               (self.action_dim,))
            log_std = jnp.broadcast_to(param, mean.shape)
        return (mean, log_std), _value(obs, features, self)
