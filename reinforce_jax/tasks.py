"""The reference systems' tasks as gymnax environments (registered in ``envs``).

The README lists the five reference systems. Three of them bring a task:

* ``FourCurves`` (the FourCurves bandit): a one-step Gaussian bandit. Observation
  x ~ N(0, 1); a 4-D continuous action; per-dimension reward -(a_i - y_i)^2 with
  y = (x, x^2, x^3, sin x). The scalar reward is their sum; ``info["reward_per_dim"]``
  holds the four parts.
* ``DigitMatch-N`` (the DigitMatch bandit): a one-step contextual bandit. Observation i
  uniform in {0..N-1} (the raw number, as the original fed it, or one-hot with the
  ``-onehot`` suffix); action a in {0..N-1}; reward -|i - a|.
* ``LineWalk`` (the LineWalk agents' task): x starts at 0 and moves +-0.1 per step
  (action 1 right, 0 left); the episode terminates once |x| > 1 with reward +1 (right)
  or -1 (left), every other step pays 0.01; at most 50 steps (a truncation). The
  observation is [x, 0, 0, 0], as in the original. The position is kept as an integer
  count of 0.1-steps, so "past 1" means 11 steps right, exactly as the original's float64
  arithmetic has it (ten additions of 0.1 give 0.9999999999999999 there).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces


# ---------------------------------------------------------------- FourCurves
@struct.dataclass
class BanditState(environment.EnvState):
    context: jax.Array  # x (FourCurves) or i (DigitMatch)
    time: int


@struct.dataclass
class OneStepParams(environment.EnvParams):
    max_steps_in_episode: int = 1


def four_curves_targets(x: jax.Array) -> jax.Array:
    """y = (x, x^2, x^3, sin x) stacked on a new last axis."""
    return jnp.stack([x, x**2, x**3, jnp.sin(x)], axis=-1)


class FourCurves(environment.Environment[BanditState, OneStepParams]):
    """The FourCurves bandit: act with a 4-D guess of (x, x^2, x^3, sin x)."""

    @property
    def default_params(self) -> OneStepParams:
        return OneStepParams()

    def reset_env(self, key: jax.Array, params: OneStepParams):
        x = jax.random.normal(key, ())
        state = BanditState(context=x, time=0)
        return self.get_obs(state), state

    def step_env(self, key, state: BanditState, action, params: OneStepParams):
        per_dim = -((jnp.asarray(action, jnp.float32) - four_curves_targets(state.context)) ** 2)
        new = state.replace(time=state.time + 1)
        return (self.get_obs(new), new, per_dim.sum(), jnp.array(True),
                {"reward_per_dim": per_dim})

    def get_obs(self, state: BanditState, params=None, key=None) -> jax.Array:
        return state.context[None].astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return state.time >= 1

    @property
    def name(self) -> str:
        return "FourCurves"

    def action_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (4,), jnp.float32)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (1,), jnp.float32)


# ---------------------------------------------------------------- DigitMatch
class DigitMatch(environment.Environment[BanditState, OneStepParams]):
    """The DigitMatch bandit: see i, answer a, get -|i - a|."""

    def __init__(self, n: int = 10, one_hot: bool = False):
        super().__init__()
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise ValueError(f"DigitMatch n={n!r}; allowed: an integer >= 2")
        self.n, self.one_hot = n, one_hot

    @property
    def default_params(self) -> OneStepParams:
        return OneStepParams()

    def reset_env(self, key, params):
        state = BanditState(context=jax.random.randint(key, (), 0, self.n), time=0)
        return self.get_obs(state), state

    def step_env(self, key, state, action, params):
        reward = -jnp.abs(state.context - action).astype(jnp.float32)
        new = state.replace(time=state.time + 1)
        return self.get_obs(new), new, reward, jnp.array(True), {}

    def get_obs(self, state, params=None, key=None) -> jax.Array:
        if self.one_hot:
            return jax.nn.one_hot(state.context, self.n, dtype=jnp.float32)
        return state.context[None].astype(jnp.float32)

    def is_terminated(self, state, params) -> jax.Array:
        return state.time >= 1

    @property
    def name(self) -> str:
        return f"DigitMatch-{self.n}" + ("-onehot" if self.one_hot else "")

    @property
    def num_actions(self) -> int:
        return self.n

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(self.n)

    def observation_space(self, params=None) -> spaces.Box:
        if self.one_hot:
            return spaces.Box(0.0, 1.0, (self.n,), jnp.float32)
        return spaces.Box(0.0, float(self.n - 1), (1,), jnp.float32)


# ---------------------------------------------------------------- LineWalk
@struct.dataclass
class WalkState(environment.EnvState):
    position: jax.Array  # int: x = 0.1 * position
    time: int


@struct.dataclass
class WalkParams(environment.EnvParams):
    max_steps_in_episode: int = 50
    edge: int = 11  # |position| >= edge ends the episode: x = +-1.1, the first x past +-1


class LineWalk(environment.Environment[WalkState, WalkParams]):
    """The LineWalk agents' 1-D walk: reach x > 1 for +1, x < -1 costs -1, else 0.01 a step."""

    @property
    def default_params(self) -> WalkParams:
        return WalkParams()

    def reset_env(self, key, params):
        state = WalkState(position=jnp.array(0, jnp.int32), time=0)
        return self.get_obs(state), state

    def step_env(self, key, state: WalkState, action, params: WalkParams):
        position = state.position + jnp.where(action == 1, 1, -1).astype(jnp.int32)
        reward = jnp.where(position >= params.edge, 1.0,
                           jnp.where(position <= -params.edge, -1.0, 0.01)).astype(jnp.float32)
        new = WalkState(position=position, time=state.time + 1)
        return self.get_obs(new), new, reward, self.is_terminated(new, params), {}

    def get_obs(self, state: WalkState, params=None, key=None) -> jax.Array:
        x = 0.1 * state.position.astype(jnp.float32)
        return jnp.stack([x, 0.0, 0.0, 0.0]).astype(jnp.float32)

    def is_terminated(self, state: WalkState, params: WalkParams) -> jax.Array:
        return jnp.abs(state.position) >= params.edge

    @property
    def name(self) -> str:
        return "LineWalk"

    @property
    def num_actions(self) -> int:
        return 2

    def action_space(self, params=None) -> spaces.Discrete:
        return spaces.Discrete(2)

    def observation_space(self, params=None) -> spaces.Box:
        return spaces.Box(-1.1, 1.1, (4,), jnp.float32)


def make_task(name: str) -> tuple[Any, Any] | None:
    """``(env, params)`` for a task name such as ``DigitMatch-37-onehot``; None if not a task."""
    if name == "FourCurves":
        env = FourCurves()
    elif name == "LineWalk":
        env = LineWalk()
    elif name.startswith("DigitMatch-"):
        rest = name[len("DigitMatch-"):]
        one_hot = rest.endswith("-onehot")
        digits = rest[: -len("-onehot")] if one_hot else rest
        if not digits.isdigit():
            return None
        env = DigitMatch(int(digits), one_hot)
    else:
        return None
    return env, env.default_params
