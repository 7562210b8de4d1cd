"""Returns and normalization against plain Python loops and hand-worked numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax import returns as R


def loop_returns(rewards, dones, gamma, bootstrap):
    T, N = rewards.shape
    out = np.zeros_like(rewards)
    for n in range(N):
        G = bootstrap[n]
        for t in reversed(range(T)):
            G = rewards[t, n] + gamma * (1.0 - dones[t, n]) * G
            out[t, n] = G
    return out


def test_hand_worked_three_steps():
    # r = 1, 2, 3 with gamma 0.5: G2 = 3, G1 = 2 + 1.5 = 3.5, G0 = 1 + 1.75 = 2.75
    G = R.discounted_returns(jnp.array([1.0, 2.0, 3.0]), jnp.zeros(3), 0.5)
    np.testing.assert_allclose(G, [2.75, 3.5, 3.0])


def test_done_cuts_and_bootstrap_enters():
    # done at t=1 stops flow from t=2; bootstrap 10 enters at the last step only.
    G = R.discounted_returns(jnp.array([1.0, 1.0, 1.0]), jnp.array([0, 1, 0]), 0.9,
                             bootstrap=jnp.array(10.0))
    np.testing.assert_allclose(G, [1.9, 1.0, 1.0 + 9.0], rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.9, 0.99, 1.0])
def test_matches_python_loop(gamma):
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(17, 5)).astype(np.float32)
    dones = (rng.random((17, 5)) < 0.2).astype(np.float32)
    bootstrap = rng.normal(size=5).astype(np.float32)
    G = R.discounted_returns(rewards, dones, gamma, bootstrap)
    np.testing.assert_allclose(G, loop_returns(rewards, dones, gamma, bootstrap), rtol=1e-5,
                               atol=1e-5)


def test_normalize_uses_unbiased_std():
    x = jnp.array([1.0, 2.0, 3.0, 4.0])
    # mean 2.5, unbiased std sqrt(5/3) = 1.290994
    expected = (np.array([1, 2, 3, 4]) - 2.5) / (np.sqrt(5 / 3) + 1e-8)
    np.testing.assert_allclose(R.normalize(x), expected, rtol=1e-6)
    biased = (np.array([1, 2, 3, 4]) - 2.5) / np.std([1, 2, 3, 4])
    assert not np.allclose(R.normalize(x), biased, rtol=1e-3)


def test_normalize_mask_ignores_and_keeps_padding():
    x = jnp.array([1.0, 3.0, 100.0])
    out = R.normalize(x, mask=jnp.array([1, 1, 0]))
    # valid {1, 3}: mean 2, unbiased std sqrt(2)
    np.testing.assert_allclose(out[:2], [-1 / np.sqrt(2), 1 / np.sqrt(2)], rtol=1e-6)
    assert out[2] == 100.0


@pytest.mark.parametrize("mask", [None, [0, 1, 0]])
def test_normalize_fewer_than_two_valid_is_identity(mask):
    x = jnp.array([5.0]) if mask is None else jnp.array([5.0, 7.0, 9.0])
    out = R.normalize(x, mask=None if mask is None else jnp.array(mask))
    np.testing.assert_array_equal(out, x)
    assert np.all(np.isfinite(out))


def test_episode_start_values_broadcasts_first_return():
    G = jnp.array([3.0, 2.0, 1.0, 5.0, 4.0])
    dones = jnp.array([0, 0, 1, 0, 1])
    np.testing.assert_array_equal(R.episode_start_values(G, dones), [3, 3, 3, 5, 5])


def test_finished_mask_drops_unfinished_tail():
    dones = jnp.array([[0, 0], [1, 0], [0, 0], [0, 1], [0, 0]])
    expected = np.array([[1, 1], [1, 1], [0, 1], [0, 1], [0, 0]], bool)
    np.testing.assert_array_equal(R.finished_mask(dones), expected)


def test_discount_weights():
    w = R.discount_weights(jnp.array([0, 1, 2, 0]), 0.5)
    np.testing.assert_allclose(w, [1.0, 0.5, 0.25, 1.0])


def test_returns_under_vmap_equal_columnwise():
    rng = np.random.default_rng(1)
    rewards = rng.normal(size=(3, 9, 4)).astype(np.float32)  # [seeds, T, N]
    dones = rng.random((3, 9, 4)) < 0.3
    batched = jax.vmap(lambda r, d: R.discounted_returns(r, d, 0.9))(rewards, dones)
    for s in range(3):
        np.testing.assert_allclose(batched[s], R.discounted_returns(rewards[s], dones[s], 0.9))
