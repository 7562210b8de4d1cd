"""The plain PureJaxRL-style REINFORCE (``benchmarks/plain_reinforce.py``) and the shapes
benchmark that races it against ours (``benchmarks/shapes.py``), at tiny shapes."""

from __future__ import annotations

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import plain_reinforce, shapes

SEEDS, ENVS, UPDATES = 2, 8, 2


@pytest.fixture(scope="module", params=["episodic", "fixed"])
def trained(request) -> tuple[str, dict[str, np.ndarray]]:
    """Each mode trained once for the module: ``(mode, metrics [SEEDS, UPDATES])``."""
    train = plain_reinforce.make_train(ENVS, request.param)
    keys = jax.vmap(jax.random.key)(jnp.arange(SEEDS))
    _, metrics = jax.jit(jax.vmap(lambda key: train(key, UPDATES)))(keys)
    return request.param, jax.device_get(metrics)


def test_both_modes_run_with_finite_metrics(trained):
    mode, metrics = trained
    for name, value in metrics.items():
        assert value.shape == (SEEDS, UPDATES), name
        assert np.isfinite(value).all(), name
    window = 500 if mode == "episodic" else plain_reinforce.HORIZON
    computed, valid = metrics["computed_steps"], metrics["valid_steps"]
    assert (computed == window * ENVS).all()
    assert (valid <= computed).all()
    if mode == "fixed":  # every step of a carried env lies in some episode
        np.testing.assert_array_equal(valid, computed)
    else:
        # CartPole pays 1 per step, and every episode ends inside the 500-step window:
        # the mean episode return is the valid steps per env
        np.testing.assert_allclose(metrics["episode_return"] * ENVS, valid, rtol=1e-6)


def reward_to_go_loop(reward: np.ndarray, done: np.ndarray, gamma: float):
    """The discounted sum of each step's episode's rewards from it on, and whether that
    episode ends inside the window: the definition, one step at a time."""
    T, N = reward.shape
    G, finished = np.zeros((T, N)), np.zeros((T, N), bool)
    for n in range(N):
        for t in range(T):
            for u in range(t, T):
                G[t, n] += gamma ** (u - t) * reward[u, n]
                if done[u, n]:
                    finished[t, n] = True
                    break
    return G, finished


def test_reward_to_go_matches_a_loop():
    # env 0: episodes of 2, 3 and 1 steps, then an unfinished one; env 1: an episode
    # that ended at step 2 followed by zero-reward invalid steps (episodic mode);
    # env 2: one episode running past the window
    reward = np.array([[1.0, 2.0, 0.5], [2.0, -1.0, 1.0], [3.0, 4.0, 0.0],
                       [-1.0, 0.0, 2.0], [5.0, 0.0, 1.0], [0.5, 0.0, 3.0],
                       [2.0, 0.0, -2.0]], np.float32)
    done = np.zeros(reward.shape, bool)
    done[[1, 4, 5], 0] = True
    done[2, 1] = True
    gamma = 0.9
    G, finished = plain_reinforce.reward_to_go(jnp.asarray(reward), jnp.asarray(done), gamma)
    expect_G, expect_finished = reward_to_go_loop(reward, done, gamma)
    np.testing.assert_allclose(G, expect_G, rtol=1e-6)
    np.testing.assert_array_equal(finished, expect_finished)
    assert G[0, 0] == pytest.approx(1.0 + 0.9 * 2.0)  # an episode's return stops at its end


def test_shapes_benchmark_writes_finite_ratios(tmp_path):
    argv = ["--seeds", "2", "--envs", "8", "--modes", "episodic", "fixed", "--repeats", "1",
            "--updates", "1", "--out", str(tmp_path)]
    assert shapes.main(argv) == 0
    result = json.loads((tmp_path / "shapes_full.json").read_text())
    assert [(r["mode"], r["seeds"], r["envs"], r["updates"]) for r in result["shapes"]] == \
        [("episodic", 2, 8, 1), ("fixed", 2, 8, 1)]
    for r in result["shapes"]:
        assert len(r["raw"]["ours"]) == len(r["raw"]["plain"]) == 1
        for kind in ("computed_steps_per_s", "valid_steps_per_s"):
            for value in r["ratio"][kind].values():
                assert isinstance(value, float) and math.isfinite(value) and value > 0, (
                    r["mode"], kind, value)
