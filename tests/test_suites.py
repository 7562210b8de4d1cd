"""XLand-MiniGrid behind gymnax's API (reinforce_jax.suites): episode ends kept apart, the
envs train by name, and a clear error without the package."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.driver import final_returns, run_training
from reinforce_jax.envs import make_env
from reinforce_jax.rollout import reset_envs, rollout

pytest.importorskip("xminigrid")

EMPTY = "MiniGrid-Empty-6x6"


def test_goal_is_terminated_and_step_limit_truncated():
    env, params, spec = make_env(EMPTY)
    assert spec.discrete and spec.action_dim == 6 and spec.obs_shape == (7, 7, 2)
    assert spec.max_steps == 144
    carry = reset_envs(jax.random.key(0), env, params, 256)
    uniform = lambda obs: jnp.zeros((obs.shape[0], spec.action_dim))  # noqa: E731
    _, traj = rollout(jax.random.key(1), uniform, env, params, carry, spec.max_steps,
                      True, False)
    term, trunc = np.asarray(traj.terminated), np.asarray(traj.truncated)
    reward, step = np.asarray(traj.reward), np.asarray(traj.step)
    assert term.any() and trunc.any()  # a random walk finds the goal in some episodes only
    assert not (term & trunc).any()
    # xminigrid pays 1 - 0.9 * steps / max_steps at the goal and nothing elsewhere
    np.testing.assert_allclose(reward[term], 1 - 0.9 * (step[term] + 1) / 144, rtol=1e-5)
    assert (reward[~term] == 0).all()
    assert (step[trunc] == 143).all()  # the limit: the 144th step


def test_minigrid_learns_well_above_a_random_policy():
    # a random policy averages about 0.17 here (evaluate.random_returns)
    cfg = TrainConfig(env=EMPTY, num_envs=32, num_updates=30, hidden_sizes=(64,))
    result = run_training(cfg, num_seeds=2, progress=False)
    assert result.metrics["episode_return"][:, :3].mean() < 0.4
    assert final_returns(result, last=5).min() > 0.8, final_returns(result, last=5)


def test_unknown_minigrid_name_and_missing_package(monkeypatch):
    with pytest.raises(ValueError, match="'MiniGrid-Nope' is not an XLand-MiniGrid env; "
                                         "allowed: .*MiniGrid-Empty-6x6"):
        make_env("MiniGrid-Nope")
    monkeypatch.setitem(sys.modules, "xminigrid", None)  # as if it were not installed
    with pytest.raises(ValueError, match=r"pip install 'reinforce_jax\[xminigrid\]'"):
        make_env(EMPTY)
