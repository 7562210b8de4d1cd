"""Distributions against torch.distributions in float64, and numerical safety."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from reinforce_jax import distributions as D  # noqa: E402


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_categorical_matches_torch():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(7, 5)) * 3
    actions = rng.integers(0, 5, size=7)
    ref = torch.distributions.Categorical(logits=torch.tensor(logits))
    np.testing.assert_allclose(D.categorical_log_prob(jnp.asarray(logits), jnp.asarray(actions)),
                               ref.log_prob(torch.tensor(actions)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(D.categorical_entropy(jnp.asarray(logits)),
                               ref.entropy().numpy(), rtol=1e-12)


def test_categorical_entropy_with_neg_inf_logits_is_finite_with_finite_gradient():
    logits = np.array([[0.3, -np.inf, 1.2], [-np.inf, 0.0, -np.inf]])
    H = D.categorical_entropy(jnp.asarray(logits))
    ref = torch.distributions.Categorical(logits=torch.tensor(logits)).entropy().numpy()
    np.testing.assert_allclose(H, ref, rtol=1e-12)
    grad = jax.grad(lambda l: D.categorical_entropy(l).sum())(jnp.asarray(logits))
    assert np.all(np.isfinite(grad))
    # naive -sum p log p is NaN here: that is the trap this guards against
    p = jax.nn.softmax(jnp.asarray(logits))
    assert np.isnan(np.asarray(-(p * jnp.log(p)).sum(-1))).any()


def test_normal_matches_torch_summed_over_last_axis():
    rng = np.random.default_rng(1)
    mean, log_std = rng.normal(size=(6, 3)), rng.normal(size=(6, 3))
    actions = rng.normal(size=(6, 3))
    ref = torch.distributions.Normal(torch.tensor(mean), torch.tensor(log_std).exp())
    np.testing.assert_allclose(
        D.normal_log_prob(jnp.asarray(mean), jnp.asarray(log_std), jnp.asarray(actions)),
        ref.log_prob(torch.tensor(actions)).sum(-1).numpy(), rtol=1e-12)
    np.testing.assert_allclose(D.normal_entropy(jnp.asarray(log_std)),
                               ref.entropy().sum(-1).numpy(), rtol=1e-12)


@pytest.mark.parametrize("log_std", [-20.0, 2.0, 15.0])
def test_normal_extreme_log_std_matches_torch_and_is_finite(log_std):
    mean, a = np.array([[0.1, -0.2]]), np.array([[0.1 + 1e-9, -0.2 - 3e-9]])
    ls = np.full((1, 2), log_std)
    ours = D.normal_log_prob(jnp.asarray(mean), jnp.asarray(ls), jnp.asarray(a))
    ref = torch.distributions.Normal(torch.tensor(mean), torch.tensor(ls).exp())
    np.testing.assert_allclose(ours, ref.log_prob(torch.tensor(a)).sum(-1).numpy(), rtol=1e-10)
    with jax.enable_x64(False):
        g = jax.grad(lambda m, s: D.normal_log_prob(m, s, jnp.float32(a)).sum(), argnums=(0, 1))(
            jnp.float32(mean), jnp.float32(ls))
        assert all(np.all(np.isfinite(x)) for x in g)


def test_clamped_probs_form_matches_torch_clamp_then_log():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(5, 4)) * 10  # some probabilities fall under 1e-6
    actions = rng.integers(0, 4, size=5)
    t_logits = torch.tensor(logits, requires_grad=True)
    probs = torch.softmax(t_logits, -1)
    t_lp = probs[torch.arange(5), torch.tensor(actions)].clamp(min=1e-6).log()
    t_lp.sum().backward()
    ours = jax.value_and_grad(
        lambda l: D.clamped_probs_log_prob(l, jnp.asarray(actions)).sum())(jnp.asarray(logits))
    np.testing.assert_allclose(ours[0], t_lp.sum().item(), rtol=1e-12)
    np.testing.assert_allclose(ours[1], t_logits.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_samplers_have_the_right_moments():
    key = jax.random.key(0)
    draws = D.sample_categorical(key, jnp.log(jnp.array([[0.2, 0.8]] * 20000)))
    assert abs(float(draws.mean()) - 0.8) < 0.015
    x = D.sample_normal(key, jnp.full((20000, 1), 1.5), jnp.full((20000, 1), np.log(0.5)))
    assert abs(float(x.mean()) - 1.5) < 0.02 and abs(float(x.std()) - 0.5) < 0.02
