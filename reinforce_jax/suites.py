"""Environments from JAX suites outside gymnax, behind gymnax's ``Environment`` API.

An adapter is a gymnax ``Environment`` whose ``reset_env`` / ``step_env`` call the other
suite, so the rollout, gymnax's wrappers, evaluation and every command treat it as a
gymnax env. One suite is adapted here:

* **XLand-MiniGrid** (``pip install "reinforce_jax[xminigrid]"``): its MiniGrid ports
  (``MiniGrid-Empty-6x6``, ``MiniGrid-DoorKey-5x5``, ``MiniGrid-FourRooms``, ... every
  ``MiniGrid-`` name in ``xminigrid.registered_environments()``) work as ``--env NAME``.
  Its ``XLand-MiniGrid-*`` meta-RL envs are not adapted: they need a ruleset benchmark,
  which xminigrid downloads. The observation is the agent's
  view, an int grid [view, view, 2] of tile and colour ids (the conv torso reads it, cast
  to float); the 6 actions are discrete. xminigrid marks a goal reached with discount 0
  (terminated) and its step limit ``max_steps`` as a last step with discount 1
  (truncated); the adapter keeps the two apart as gymnax does.

To adapt another suite, write the same four methods (``reset_env``, ``step_env``,
``observation_space``, ``action_space``) and ``register_env`` a factory for it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

XMINIGRID_PREFIX = "MiniGrid-"


@struct.dataclass
class AdapterState:
    inner: Any  # the suite's own state (xminigrid: its TimeStep)
    time: jax.Array  # steps taken in the episode, for gymnax's time limit


@struct.dataclass
class AdapterParams:
    # the suite's own params, static: xminigrid's are Python ints and strings, and a
    # static field must hash (an array there would not)
    inner: Any = struct.field(pytree_node=False)
    max_steps_in_episode: int = struct.field(pytree_node=False, default=1)


class XMiniGrid(environment.Environment):
    """An XLand-MiniGrid env as a gymnax env."""

    def __init__(self, env: Any, params: Any, name: str):
        super().__init__()
        self.env, self.inner_params, self._name = env, params, name

    @property
    def default_params(self) -> AdapterParams:
        return AdapterParams(self.inner_params, int(self.inner_params.max_steps))

    @property
    def name(self) -> str:
        return self._name

    @property
    def num_actions(self) -> int:
        return int(self.env.num_actions(self.inner_params))

    def reset_env(self, key, params):
        timestep = self.env.reset(params.inner, key)
        return timestep.observation, AdapterState(timestep, jnp.int32(0))

    def step_env(self, key, state, action, params):
        timestep = self.env.step(params.inner, state.inner, action)
        terminated = timestep.last() & (timestep.discount == 0)
        return (timestep.observation, AdapterState(timestep, state.time + 1),
                timestep.reward.astype(jnp.float32), terminated, {})

    def is_truncated(self, state, params):
        return state.time >= params.max_steps_in_episode

    def observation_space(self, params):
        shape = tuple(self.env.observation_shape(params.inner))
        return spaces.Box(0, 255, shape, jnp.uint8)

    def action_space(self, params):
        return spaces.Discrete(self.num_actions)


def is_xminigrid_name(name: str) -> bool:
    return name.startswith(XMINIGRID_PREFIX)


def xminigrid_names() -> list[str]:
    """The adapted XLand-MiniGrid names; none when xminigrid is not installed."""
    try:
        import xminigrid
    except ImportError:
        return []
    return [n for n in xminigrid.registered_environments() if is_xminigrid_name(n)]


def make_xminigrid(name: str) -> tuple[XMiniGrid, AdapterParams]:
    """The XLand-MiniGrid env ``name`` behind gymnax's API; a one-line error when the
    package is missing or the name unknown."""
    try:
        import xminigrid
    except ImportError:
        raise ValueError(f"env={name!r} is an XLand-MiniGrid env; install it with: "
                         "pip install 'reinforce_jax[xminigrid]'") from None
    known = xminigrid_names()
    if name not in known:
        raise ValueError(f"env={name!r} is not an XLand-MiniGrid env; allowed: "
                         f"{', '.join(known)}")
    env, params = xminigrid.make(name)
    adapter = XMiniGrid(env, params, name)
    return adapter, adapter.default_params
