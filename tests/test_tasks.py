"""The reference systems' environments against hand-worked steps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax.envs import make_env
from reinforce_jax.tasks import DigitMatch, four_curves_targets


def _walk(env, params, actions):
    """Step LineWalk with the given actions (no auto-reset); collect everything."""
    key = jax.random.key(0)
    obs, state = env.reset(key, params)
    out = []
    for a in actions:
        obs, state, r, term, info = env.step_env(key, state, jnp.int32(a), params)
        out.append((np.asarray(obs), float(r), bool(term), bool(env.is_truncated(state, params))))
    return out


def test_linewalk_eleven_steps_right_reach_plus_one():
    env, params, spec = make_env("LineWalk")
    assert spec.discrete and spec.action_dim == 2 and spec.max_steps == 50
    steps = _walk(env, params, [1] * 11)
    assert [r for _, r, _, _ in steps[:10]] == pytest.approx([0.01] * 10)
    assert steps[9][0][0] == pytest.approx(1.0) and not steps[9][2]  # x = 1.0 is not past 1
    obs, r, term, _ = steps[10]
    assert r == 1.0 and term and obs[0] == pytest.approx(1.1)
    assert obs[1:].tolist() == [0.0, 0.0, 0.0]
    assert sum(r for _, r, _, _ in steps) == pytest.approx(1.1)


def test_linewalk_left_edge_costs_minus_one():
    env, params, _ = make_env("LineWalk")
    steps = _walk(env, params, [0] * 11)
    assert steps[10][1] == -1.0 and steps[10][2]
    assert steps[2][0][0] == pytest.approx(-0.3)


def test_linewalk_dithering_is_truncated_at_fifty_steps():
    env, params, _ = make_env("LineWalk")
    steps = _walk(env, params, [1, 0] * 25)
    assert not any(term for _, _, term, _ in steps)
    assert [trunc for *_, trunc in steps] == [False] * 49 + [True]
    assert sum(r for _, r, _, _ in steps) == pytest.approx(0.5)


def test_fourcurves_reward_per_dimension():
    env, params, spec = make_env("FourCurves")
    assert not spec.discrete and spec.action_dim == 4 and spec.obs_shape == (1,)
    obs, state = env.reset(jax.random.key(3), params)
    x = float(obs[0])
    y = np.array([x, x**2, x**3, np.sin(x)])
    np.testing.assert_allclose(four_curves_targets(jnp.float32(x)), y, rtol=1e-6)
    action = jnp.asarray(y + np.array([1.0, 0.0, -0.5, 2.0]), jnp.float32)
    _, _, reward, term, info = env.step_env(jax.random.key(0), state, action, params)
    np.testing.assert_allclose(info["reward_per_dim"], [-1.0, 0.0, -0.25, -4.0], atol=1e-5)
    assert float(reward) == pytest.approx(-5.25, abs=1e-5) and bool(term)


def test_fourcurves_context_is_standard_normal():
    env, params, _ = make_env("FourCurves")
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(0), 20000),
                                                     params)
    assert abs(float(obs.mean())) < 0.03 and abs(float(obs.std()) - 1.0) < 0.03


@pytest.mark.parametrize("name, n, one_hot", [("DigitMatch-10", 10, False),
                                              ("DigitMatch-100-onehot", 100, True),
                                              ("DigitMatch-7", 7, False)])
def test_digitmatch_observation_and_reward(name, n, one_hot):
    env, params, spec = make_env(name)
    assert spec.discrete and spec.action_dim == n and spec.max_steps == 1
    assert spec.obs_shape == ((n,) if one_hot else (1,))
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(1), 4000),
                                                         params)
    i = np.asarray(obs.argmax(-1) if one_hot else obs[:, 0]).astype(int)
    assert set(i.tolist()) == set(range(n))  # uniform over every input, nothing outside
    if one_hot:
        assert np.all(np.asarray(obs).sum(-1) == 1.0)
    actions = jnp.asarray((i * 3 + 1) % n)
    step = jax.vmap(env.step_env, in_axes=(None, 0, 0, None))
    _, _, reward, term, _ = step(jax.random.key(0), state, actions, params)
    np.testing.assert_array_equal(np.asarray(reward), -np.abs(i - np.asarray(actions)))
    assert bool(term.all())


def test_digitmatch_hand_worked_and_bad_n():
    env = DigitMatch(10)
    state = env.reset(jax.random.key(0), env.default_params)[1].replace(context=jnp.int32(3))
    assert float(env.step_env(jax.random.key(0), state, jnp.int32(7), env.default_params)[2]) \
        == -4.0
    with pytest.raises(ValueError, match="n=1; allowed: an integer >= 2"):
        make_env("DigitMatch-1")


def test_unknown_task_name_lists_the_tasks():
    with pytest.raises(ValueError, match="LineWalk.*DigitMatch-N"):
        make_env("DigitMatch-ten")
