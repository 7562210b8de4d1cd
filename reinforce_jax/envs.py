"""Environments by name: gymnax classic control plus the reference systems' tasks.

The tasks (``reinforce_jax.tasks``): ``FourCurves``, ``LineWalk`` and ``DigitMatch-N``
for any N (``DigitMatch-N-onehot`` for the one-hot observation).

``make_env(name)`` returns the gymnax env, its default params and an ``EnvSpec``
describing what the policy needs (discrete or continuous actions, sizes, time limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import gymnax
import numpy as np
from gymnax.environments import spaces

from reinforce_jax.tasks import make_task

GYMNAX_ENVS = (
    "CartPole-v1",
    "Acrobot-v1",
    "MountainCar-v0",
    "Pendulum-v1",
    "MountainCarContinuous-v0",
)

# name -> factory returning (env, env_params); extended by register_env.
_REGISTRY: dict[str, Callable[[], tuple[Any, Any]]] = {
    name: (lambda name=name: gymnax.make(name)) for name in GYMNAX_ENVS
}
TASK_ENVS = ("FourCurves", "LineWalk", "DigitMatch-10", "DigitMatch-100",
             "DigitMatch-10-onehot", "DigitMatch-100-onehot")
_REGISTRY.update({name: (lambda name=name: make_task(name)) for name in TASK_ENVS})


@dataclass(frozen=True)
class EnvSpec:
    """Static facts about an environment that fix array shapes."""

    name: str
    obs_shape: tuple[int, ...]
    discrete: bool
    action_dim: int  # number of actions (discrete) or action dimensions (continuous)
    max_steps: int  # the env's own time limit
    action_low: tuple[float, ...] | None = None
    action_high: tuple[float, ...] | None = None


def register_env(name: str, factory: Callable[[], tuple[Any, Any]]) -> None:
    """Make ``factory() -> (env, env_params)`` available as ``name``."""
    _REGISTRY[name] = factory


def available_envs() -> list[str]:
    return sorted(_REGISTRY)


def make_env(name: str) -> tuple[Any, Any, EnvSpec]:
    """Build the env called ``name``; unknown names list the available ones."""
    if name in _REGISTRY:
        env, params = _REGISTRY[name]()
    elif (task := make_task(name)) is not None:  # DigitMatch-N for any N
        env, params = task
    else:
        raise ValueError(f"env={name!r} is not known; available: {', '.join(available_envs())}"
                         " (DigitMatch-N[-onehot] takes any N >= 2)")
    return env, params, _spec(name, env, params)


def _spec(name: str, env: Any, params: Any) -> EnvSpec:
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    max_steps = int(params.max_steps_in_episode)
    if isinstance(act_space, spaces.Discrete):
        return EnvSpec(name, tuple(obs_space.shape), True, int(act_space.n), max_steps)
    if isinstance(act_space, spaces.Box):
        shape = tuple(act_space.shape) or (1,)
        low = np.broadcast_to(np.asarray(act_space.low, np.float64), shape).ravel()
        high = np.broadcast_to(np.asarray(act_space.high, np.float64), shape).ravel()
        return EnvSpec(name, tuple(obs_space.shape), False, int(np.prod(shape)), max_steps,
                       tuple(low.tolist()), tuple(high.tolist()))
    raise ValueError(f"env={name!r} has action space {act_space}; allowed: Discrete, Box")
