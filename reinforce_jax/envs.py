"""Environments by name: every gymnax environment plus the reference systems' tasks.

XLand-MiniGrid's ``MiniGrid-*`` envs work too when it is installed (the ``xminigrid``
extra; ``reinforce_jax.suites``). The tasks (``reinforce_jax.tasks``): ``FourCurves``,
``LineWalk`` and ``DigitMatch-N``
for any N (``DigitMatch-N-onehot`` for the one-hot observation).

``make_env(name)`` returns the gymnax env, its default params and an ``EnvSpec``
describing what the policy needs (discrete or continuous actions, sizes, time limit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnax
import numpy as np
from gymnax.environments import spaces

from reinforce_jax.suites import is_xminigrid_name, make_xminigrid, xminigrid_names
from reinforce_jax.tasks import make_task

GYMNAX_ENVS = tuple(gymnax.registered_envs)
# gymnax's MNISTBandit downloads MNIST into this folder when it is built, unless the files
# are already there
MNIST_DIR = Path("/tmp/mnist")
MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _make_gymnax(name: str) -> tuple[Any, Any]:
    if name.startswith("MNISTBandit") and not all((MNIST_DIR / f).is_file()
                                                  for f in MNIST_FILES):
        raise ValueError(
            f"env={name!r} needs the MNIST files, which gymnax downloads when the env is "
            f"built (this machine may be offline); put {', '.join(MNIST_FILES)} (from "
            f"https://storage.googleapis.com/cvdf-datasets/mnist/) in {MNIST_DIR}")
    return gymnax.make(name)


# name -> factory returning (env, env_params); extended by register_env.
_REGISTRY: dict[str, Callable[[], tuple[Any, Any]]] = {
    name: (lambda name=name: _make_gymnax(name)) for name in GYMNAX_ENVS
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
    obs_categories: int = 0  # a discrete observation space: its number of values


def register_env(name: str, factory: Callable[[], tuple[Any, Any]]) -> None:
    """Make ``factory() -> (env, env_params)`` available as ``name``."""
    _REGISTRY[name] = factory


def available_envs() -> list[str]:
    return sorted(_REGISTRY) + xminigrid_names()


def make_env(name: str) -> tuple[Any, Any, EnvSpec]:
    """Build the env called ``name``; unknown names list the available ones."""
    if name in _REGISTRY:
        env, params = _REGISTRY[name]()
    elif (task := make_task(name)) is not None:  # DigitMatch-N for any N
        env, params = task
    elif is_xminigrid_name(name):
        env, params = make_xminigrid(name)
    else:
        raise ValueError(f"env={name!r} is not known; available: {', '.join(available_envs())}"
                         " (DigitMatch-N[-onehot] takes any N >= 2; XLand-MiniGrid's MiniGrid-*"
                         " envs with the xminigrid extra)")
    return env, params, _spec(name, env, params)


def _spec(name: str, env: Any, params: Any) -> EnvSpec:
    obs_space = env.observation_space(params)
    act_space = env.action_space(params)
    max_steps = int(params.max_steps_in_episode)
    obs_shape = tuple(getattr(obs_space, "shape", ()) or ())
    categories = int(obs_space.n) if isinstance(obs_space, spaces.Discrete) else 0
    if isinstance(act_space, spaces.Discrete):
        return EnvSpec(name, obs_shape, True, int(act_space.n), max_steps,
                       obs_categories=categories)
    if isinstance(act_space, spaces.Box):
        shape = tuple(act_space.shape) or (1,)
        low = np.broadcast_to(np.asarray(act_space.low, np.float64), shape).ravel()
        high = np.broadcast_to(np.asarray(act_space.high, np.float64), shape).ravel()
        return EnvSpec(name, obs_shape, False, int(np.prod(shape)), max_steps,
                       tuple(low.tolist()), tuple(high.tolist()), categories)
    raise ValueError(f"env={name!r} has action space {act_space}; allowed: Discrete, Box")


def describe_envs() -> list[tuple[str, str, str]]:
    """``(name, observation, action)`` descriptions of every available env, for listings.
    An env that cannot be built here is described by the reason."""
    rows = []
    for name in available_envs():
        try:
            _, _, spec = make_env(name)
        except ValueError as err:
            rows.append((name, "unavailable", str(err).split(";")[0]))
            continue
        obs = (f"Discrete({spec.obs_categories})" if spec.obs_categories
               else f"Box{spec.obs_shape}")
        act = (f"Discrete({spec.action_dim})" if spec.discrete
               else f"Box({spec.action_dim},) in [{min(spec.action_low):g}, "
                    f"{max(spec.action_high):g}]")
        rows.append((name, obs, act))
    return rows
