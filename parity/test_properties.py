"""Property-based checks over random episode lengths, gamma, batch shapes and action sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from parity import torch_reference as ref
from reinforce_jax import distributions as D
from reinforce_jax import returns as R
from reinforce_jax.losses import reinforce_loss

SETTINGS = settings(max_examples=25, deadline=None)


@SETTINGS
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=4),
       gamma=st.floats(0.0, 1.0), seed=st.integers(0, 2**16))
def test_padded_returns_equal_per_episode_loop(lengths, gamma, seed):
    rng = np.random.default_rng(seed)
    T, N = max(lengths), len(lengths)
    rewards = rng.normal(size=(T, N))
    mask = np.arange(T)[:, None] < np.asarray(lengths)[None]
    dones = np.arange(T)[:, None] == np.asarray(lengths)[None] - 1
    with jax.enable_x64(True):
        G = np.asarray(R.discounted_returns(np.where(mask, rewards, 0.0), dones, gamma))
    for n, L in enumerate(lengths):
        want = ref.discounted(torch.tensor(rewards[:L, n]), gamma).numpy()
        np.testing.assert_allclose(G[:L, n], want, rtol=1e-10, atol=1e-12)


@SETTINGS
@given(T=st.integers(2, 10), N=st.integers(1, 4), A=st.integers(2, 6),
       reduction=st.sampled_from(["mean", "sum"]), seed=st.integers(0, 2**16))
def test_loss_gradient_wrt_logits_equals_torch(T, N, A, reduction, seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(T, N, A)) * 2
    actions = rng.integers(0, A, size=(T, N))
    G = rng.normal(size=(T, N))
    t = torch.tensor(logits, requires_grad=True)
    lp = torch.distributions.Categorical(logits=t).log_prob(torch.tensor(actions))
    loss = -(lp * torch.tensor(G))
    (loss.mean() if reduction == "mean" else loss.sum()).backward()
    with jax.enable_x64(True):
        ours = jax.grad(lambda l: reinforce_loss(D.categorical_log_prob(l, actions), G,
                                                 reduction=reduction))(jnp.asarray(logits))
    np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(B=st.integers(1, 6), D_=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_gaussian_loss_gradient_equals_torch(B, D_, seed):
    rng = np.random.default_rng(seed)
    mean, log_std, a = (rng.normal(size=(B, D_)) for _ in range(3))
    G = rng.normal(size=B)
    tm, ts = torch.tensor(mean, requires_grad=True), torch.tensor(log_std, requires_grad=True)
    lp = torch.distributions.Normal(tm, ts.exp()).log_prob(torch.tensor(a)).sum(-1)
    (-(lp * torch.tensor(G))).mean().backward()
    with jax.enable_x64(True):
        gm, gs = jax.grad(lambda m, s: reinforce_loss(D.normal_log_prob(m, s, a), G),
                          argnums=(0, 1))(jnp.asarray(mean), jnp.asarray(log_std))
    np.testing.assert_allclose(gm, tm.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gs, ts.grad.numpy(), rtol=1e-10, atol=1e-12)


@SETTINGS
@given(n=st.integers(1, 20), seed=st.integers(0, 2**16))
def test_normalize_equals_torch_or_is_identity_below_two(n, seed):
    x = np.random.default_rng(seed).normal(size=n)
    with jax.enable_x64(True):
        ours = np.asarray(R.normalize(x))
    if n < 2:
        np.testing.assert_array_equal(ours, x)
    else:
        np.testing.assert_allclose(ours, ref.normalized(torch.tensor(x)).numpy(), rtol=1e-10,
                                   atol=1e-12)
