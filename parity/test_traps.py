"""The known torch-vs-JAX traps, listed in the README's parity section: each test shows
the difference, then shows our side handling it."""

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from parity import torch_reference as ref
from reinforce_jax import distributions as D
from reinforce_jax import returns as R
from reinforce_jax.convert import flax_to_torch, torch_to_flax
from reinforce_jax.losses import reinforce_loss
from reinforce_jax.optim import clip_by_global_norm_torch
from reinforce_jax.policies import DiscretePolicy


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def test_unbiased_std():
    x = np.random.default_rng(0).normal(size=7)
    n = len(x)
    ratio = float(torch.tensor(x).std()) / float(jnp.std(x))
    assert ratio == pytest.approx(np.sqrt(n / (n - 1)), rel=1e-12)  # the trap
    np.testing.assert_allclose(R.normalize(x), ref.normalized(torch.tensor(x)).numpy(),
                               rtol=1e-12)


def test_one_element_batch():
    with pytest.warns(UserWarning, match="degrees of freedom"):
        torch_out = ref.normalized(torch.tensor([3.0], dtype=torch.float64))
    assert torch.isnan(torch_out).all()  # torch: std of one element is NaN
    # ours: defined, returned unchanged, and the update is finite
    np.testing.assert_array_equal(R.normalize(jnp.array([3.0])), [3.0])
    g = jax.grad(lambda lp: reinforce_loss(lp, R.normalize(jnp.array([3.0]))))(jnp.array([-0.7]))
    np.testing.assert_allclose(g, [-3.0])


def test_clip_epsilon():
    rng = np.random.default_rng(1)
    grads = {"a": rng.normal(size=(5, 3)) * 4, "b": rng.normal(size=3)}
    tensors = [torch.tensor(v, requires_grad=True) for v in grads.values()]
    for t, v in zip(tensors, grads.values()):
        t.grad = torch.tensor(v)
    torch.nn.utils.clip_grad_norm_(tensors, 0.5)
    want = {"a": tensors[0].grad.numpy(), "b": tensors[1].grad.numpy()}
    optax_out = optax.clip_by_global_norm(0.5).update(jax.tree.map(jnp.asarray, grads), None)[0]
    ours, _ = clip_by_global_norm_torch(jax.tree.map(jnp.asarray, grads), 0.5)
    optax_err = max(np.abs(optax_out[k] - want[k]).max() for k in want)
    ours_err = max(np.abs(ours[k] - want[k]).max() for k in want)
    assert optax_err > 1e-9  # ~1e-7 relative: optax has no +1e-6
    assert ours_err < 1e-15


def test_probs_vs_logits():
    # an action whose probability is below float64 eps: torch's probs form clamps it
    logits = np.array([0.0, -40.0, 1.0])
    t_logits = torch.tensor(logits, requires_grad=True)
    torch.distributions.Categorical(probs=torch.softmax(t_logits, -1)).log_prob(
        torch.tensor(1)).backward()
    ours = jax.grad(lambda l: D.categorical_log_prob(l, jnp.array(1)))(jnp.asarray(logits))
    t_logits2 = torch.tensor(logits, requires_grad=True)
    torch.distributions.Categorical(logits=t_logits2).log_prob(torch.tensor(1)).backward()
    assert np.abs(t_logits.grad.numpy() - ours).max() > 0.5  # probs form lost the gradient
    np.testing.assert_allclose(ours, t_logits2.grad.numpy(), rtol=1e-12)  # logits form agrees


def test_entropy_with_neg_inf_logits():
    logits = np.array([[1.0, -np.inf, 0.5]])
    p = jax.nn.softmax(jnp.asarray(logits))
    naive_grad = jax.grad(lambda l: -(jax.nn.softmax(l) * jax.nn.log_softmax(l)).sum())(
        jnp.asarray(logits))
    assert np.isnan(naive_grad).any()  # the trap
    t = torch.tensor(logits, requires_grad=True)
    torch.distributions.Categorical(logits=t).entropy().sum().backward()
    ours = jax.grad(lambda l: D.categorical_entropy(l).sum())(jnp.asarray(logits))
    np.testing.assert_allclose(ours, np.nan_to_num(t.grad.numpy()), atol=1e-12)
    assert float(D.categorical_entropy(jnp.asarray(logits))[0]) == pytest.approx(
        float(-(p[0, [0, 2]] * jnp.log(p[0, [0, 2]])).sum()))


def test_weight_layout():
    torch.manual_seed(0)
    model = ref.DiscreteMLP(4, 3).double()
    x = np.random.default_rng(2).normal(size=(5, 4))
    want = model.net(torch.tensor(x)).detach().numpy()
    flax_model = DiscretePolicy(3, (128, 128), "tanh")
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    untransposed = {"params": {name: {"kernel": sd[f"{p}.weight"], "bias": sd[f"{p}.bias"]}
                               for p, name in model.MAPPING.items()}}
    with pytest.raises(flax.errors.ScopeParamShapeError):  # [out, in] read as [in, out]
        flax_model.apply(untransposed, x)
    got, _ = flax_model.apply(torch_to_flax(sd, model.MAPPING), x)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_sum_vs_mean_scale():
    rng = np.random.default_rng(3)
    lp_np, G_np = rng.normal(size=9), rng.normal(size=9)
    grads = {}
    for red in ("sum", "mean"):
        t = torch.tensor(lp_np, requires_grad=True)
        loss = -(t * torch.tensor(G_np))
        (loss.sum() if red == "sum" else loss.mean()).backward()
        ours = jax.grad(lambda lp: reinforce_loss(lp, jnp.asarray(G_np), reduction=red))(
            jnp.asarray(lp_np))
        np.testing.assert_allclose(ours, t.grad.numpy(), rtol=1e-12)
        grads[red] = ours
    np.testing.assert_allclose(grads["sum"], 9 * grads["mean"], rtol=1e-12)


def test_weight_conversion_round_trip():
    torch.manual_seed(1)
    for model in (ref.DiscreteMLP(4, 3), ref.BaselineMLP(4, 2), ref.BanditMLP()):
        sd = {k: v.numpy() for k, v in model.state_dict().items()}
        params = torch_to_flax(sd, model.MAPPING)
        back = flax_to_torch(params, model.MAPPING)
        assert set(back) == set(sd)
        for k in sd:
            np.testing.assert_array_equal(back[k], sd[k])
        model.load_state_dict({k: torch.from_numpy(v) for k, v in back.items()})


def test_conversion_refuses_unmapped_entries():
    sd = {k: v.numpy() for k, v in ref.DiscreteMLP(4, 3).state_dict().items()}
    with pytest.raises(ValueError, match="not covered"):
        torch_to_flax(sd, {"net.0": "hidden_0"})
    with pytest.raises(KeyError, match="net.9"):
        torch_to_flax(sd, {"net.9": "hidden_0"})
