"""The REINFORCE loss and its gradient against the analytic form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax.losses import reinforce_loss, reinforce_objective


def test_value_mean_and_sum():
    lp = jnp.array([-1.0, -2.0, -0.5])
    G = jnp.array([2.0, 1.0, 4.0])
    # -(-2 - 2 - 2) = 6
    assert float(reinforce_loss(lp, G, reduction="sum")) == pytest.approx(6.0)
    assert float(reinforce_loss(lp, G)) == pytest.approx(2.0)
    # mask drops the last element: sum 4, mean over 2 valid = 2
    m = jnp.array([1, 1, 0])
    assert float(reinforce_loss(lp, G, m, "sum")) == pytest.approx(4.0)
    assert float(reinforce_loss(lp, G, m, "mean")) == pytest.approx(2.0)


def test_gradient_wrt_log_probs_and_stop_gradient():
    lp = jnp.array([-1.0, -2.0, -0.5, -0.1])
    G = jnp.array([2.0, 1.0, 4.0, 3.0])
    m = jnp.array([1.0, 1.0, 1.0, 0.0])
    g_lp, g_G = jax.grad(lambda a, b: reinforce_loss(a, b, m), argnums=(0, 1))(lp, G)
    np.testing.assert_allclose(g_lp, -m * G / 3.0)
    np.testing.assert_array_equal(g_G, 0.0)  # returns are constants


def test_gradient_linear_softmax_matches_analytic():
    # d/dW [-G log softmax(W x)[a]] = -G (onehot(a) - p) x^T, averaged over the batch.
    rng = np.random.default_rng(0)
    W = jnp.asarray(rng.normal(size=(3, 4)))
    X = jnp.asarray(rng.normal(size=(5, 4)))
    A = jnp.array([0, 2, 1, 1, 0])
    G = jnp.asarray(rng.normal(size=5))

    def loss(W):
        logp = jax.nn.log_softmax(X @ W.T)[jnp.arange(5), A]
        return reinforce_loss(logp, G)

    p = np.asarray(jax.nn.softmax(X @ W.T))
    onehot = np.eye(3)[np.asarray(A)]
    expected = -((np.asarray(G)[:, None] * (onehot - p)).T @ np.asarray(X)) / 5
    np.testing.assert_allclose(jax.grad(loss)(W), expected, rtol=1e-5, atol=1e-6)


def test_sum_is_mean_times_valid_count():
    rng = np.random.default_rng(2)
    lp, G = jnp.asarray(rng.normal(size=(6, 2))), jnp.asarray(rng.normal(size=(6, 2)))
    m = jnp.asarray(rng.random((6, 2)) < 0.7)
    g_sum = jax.grad(lambda x: reinforce_loss(x, G, m, "sum"))(lp)
    g_mean = jax.grad(lambda x: reinforce_loss(x, G, m, "mean"))(lp)
    np.testing.assert_allclose(g_sum, g_mean * float(m.sum()), rtol=1e-6)


def test_objective_baseline_entropy_and_value_terms():
    lp = jnp.array([-1.0, -2.0])
    G = jnp.array([3.0, 1.0])
    V = jnp.array([1.0, 2.0])
    H = jnp.array([0.5, 0.7])
    loss, m = reinforce_objective(lp, G, H, values=V, ent_coef=0.1, vf_coef=0.5)
    # advantage (2, -1): pg = -(-2 + 2)/2 = 0; value MSE = (4 + 1)/2 = 2.5; entropy 0.6
    assert float(m["pg_loss"]) == pytest.approx(0.0)
    assert float(m["value_loss"]) == pytest.approx(2.5)
    assert float(m["entropy"]) == pytest.approx(0.6)
    assert float(loss) == pytest.approx(0.5 * 2.5 - 0.1 * 0.6)
    # The policy term sees the baseline only as a constant: dpg/dV = 0, d(value)/dV = V - G.
    gV = jax.grad(lambda v: reinforce_objective(lp, G, H, values=v, vf_coef=0.5)[0])(V)
    np.testing.assert_allclose(gV, 0.5 * 2 * (V - G) / 2)


def test_weights_scale_the_policy_term():
    lp = jnp.array([-1.0, -2.0])
    G = jnp.array([3.0, 1.0])
    w = jnp.array([1.0, 0.5])
    _, m = reinforce_objective(lp, G, jnp.zeros(2), weights=w)
    assert float(m["pg_loss"]) == pytest.approx(-(-3.0 - 1.0) / 2)


def test_bad_reduction_is_rejected():
    with pytest.raises(ValueError, match="reduction='avg'"):
        reinforce_loss(jnp.ones(2), jnp.ones(2), reduction="avg")
