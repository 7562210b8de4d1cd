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
Torso = Literal["mlp", "conv"]


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


def prepare_obs(obs: jax.Array, obs_ndim: int, obs_categories: int = 0) -> jax.Array:
    """A float input whatever the env gives: a discrete observation (``obs_categories``
    > 0) one-hot encoded, a scalar one given a feature axis, integers cast. The leading
    axes (time, envs) are kept; ``obs_ndim`` is the env's observation rank."""
    if obs_categories:
        return jax.nn.one_hot(obs.astype(jnp.int32), obs_categories,
                              dtype=jnp.result_type(float))
    if not jnp.issubdtype(obs.dtype, jnp.floating):
        obs = obs.astype(jnp.result_type(float))
    return obs[..., None] if obs_ndim == 0 else obs


class Conv3x3(nn.Module):
    """``nn.Conv(features, (3, 3), padding="VALID")``: the same parameters and output,
    computed as one matmul of the 9 shifted views of the image with the kernel.
    Hand-written because under ``vmap`` over seeds a convolution with a per-seed kernel
    lowers to a grouped convolution, which XLA's CPU backend ran 16x slower than this
    matmul (Breakout-MinAtar, 16 seeds x 32 envs: 2.8k vs 46k env steps/s)."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param("kernel", orthogonal(float(np.sqrt(2.0))),
                            (3, 3, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        h, w = x.shape[-3] - 2, x.shape[-2] - 2
        views = [x[..., i:i + h, j:j + w, :] for i in range(3) for j in range(3)]
        return jnp.concatenate(views, axis=-1) @ kernel.reshape(-1, self.features) + bias


def _features(obs: jax.Array, module: nn.Module, prefix: str = "") -> jax.Array:
    """The torso: MinAtar's 3x3, 16-channel convolution for images (``torso="conv"``),
    then the hidden layers; observations of rank 2 or more are flattened first."""
    x = prepare_obs(obs, module.obs_ndim, module.obs_categories)
    ndim = max(module.obs_ndim, 1)
    if module.torso == "conv":
        x = jax.nn.relu(Conv3x3(16, name=f"{prefix}conv_0")(x))
        ndim = 3
    if ndim > 1:
        x = x.reshape(*x.shape[:-ndim], -1)
    return _trunk(x, module.hidden_sizes, module.activation, f"{prefix}hidden_")


class GRU(nn.Module):
    """A GRU cell laid out as torch's ``nn.GRU``: every gate has an input and a hidden
    Dense layer, each with a bias. Hand-written because flax's ``GRUCell`` folds torch's
    two r and z biases into one: its gradients match torch's, but an optimizer then steps
    one parameter where torch steps two, and the trajectories part."""

    features: int

    @nn.compact
    def __call__(self, memory: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        def dense(name, init):
            return nn.Dense(self.features, kernel_init=init, bias_init=nn.initializers.zeros,
                            name=name)
        i = {g: dense(f"i{g}", nn.initializers.lecun_normal())(x) for g in "rzn"}
        h = {g: dense(f"h{g}", orthogonal())(memory) for g in "rzn"}
        r = jax.nn.sigmoid(i["r"] + h["r"])
        z = jax.nn.sigmoid(i["z"] + h["z"])
        n = jnp.tanh(i["n"] + r * h["n"])
        new = (1.0 - z) * n + z * memory
        return new, new


def _memory(features: jax.Array, memory: jax.Array | None, module: nn.Module):
    """With ``gru_size`` > 0, a GRU cell after the torso: ``(new_memory, its output)``."""
    if not module.gru_size:
        return None, features
    if memory is None:
        raise ValueError(f"gru_size={module.gru_size}: call the policy with its memory, "
                         "policy.apply(params, obs, memory) (zeros at an episode's start)")
    return GRU(module.gru_size, name="gru")(memory, features)


def _output(out, memory: jax.Array | None, module: nn.Module):
    return (out, memory) if module.gru_size else out


def _value(obs: jax.Array, features: jax.Array, module: nn.Module) -> jax.Array | None:
    if module.value_head == "none":
        return None
    base = features if module.value_head == "shared" else _features(obs, module, "value_")
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
    torso: Torso = "mlp"
    obs_ndim: int = 1  # the env's observation rank (0: a scalar)
    obs_categories: int = 0  # > 0: a discrete observation, one-hot encoded
    gru_size: int = 0  # > 0: a GRU of this size after the torso; returns (out, memory)

    @nn.compact
    def __call__(self, obs: jax.Array, memory: jax.Array | None = None):
        memory, features = _memory(_features(obs, self), memory, self)
        logits = _dense(self.action_dim, 0.01, "logits", self.head_bias)(features)
        return _output((logits, _value(obs, features, self)), memory, self)


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
    torso: Torso = "mlp"
    obs_ndim: int = 1
    obs_categories: int = 0
    gru_size: int = 0

    @nn.compact
    def __call__(self, obs: jax.Array, memory: jax.Array | None = None):
        memory, features = _memory(_features(obs, self), memory, self)
        mean = _dense(self.action_dim, 0.01, "mean", self.head_bias)(features)
        if self.log_std_mode == "state":
            raw = _dense(self.action_dim, 0.01, "log_std")(features)
            log_std = jnp.clip(raw + self.log_std_init, self.log_std_min, self.log_std_max)
        else:
            param = self.param("log_std", nn.initializers.constant(self.log_std_init),
                               (self.action_dim,))
            log_std = jnp.broadcast_to(param, mean.shape)
        return _output(((mean, log_std), _value(obs, features, self)), memory, self)
