"""Our loss and returns against rlax's and TorchRL's on the same inputs.

Each test shows one convention: either that the two sides agree, or by exactly how much
they differ and which of our settings makes them agree (README, "Conventions of other
libraries"). rlax and TorchRL are optional extras (``pip install
"reinforce_jax[rlax,torchrl]"``); each library's tests are skipped when it is missing.
Everything runs in float64, and the batches are small fixed random draws.
"""

import re
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax import distributions as D
from reinforce_jax import losses as L
from reinforce_jax import returns as R

GAMMA = 0.9
T, N, OBS, A = 6, 3, 4, 3

# rlax asks its users to move to distrax; the functions tested here are still rlax's API
pytestmark = pytest.mark.filterwarnings(
    "ignore:Rlax .* will be deprecated:PendingDeprecationWarning")


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="module")
def rlax():
    return pytest.importorskip("rlax")


def test_the_readme_table_names_every_test_here():
    """README's "Conventions of other libraries" table cites these tests by name."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme[readme.index("### Conventions of other libraries"):]
    cited = set(re.findall(r"`(test_\w+)`", table))
    here = set(re.findall(r"^def (test_\w+)", Path(__file__).read_text(), re.M))
    assert cited == here - {"test_the_readme_table_names_every_test_here"}


def episodes(seed=0):
    """A time-major batch [T, N]: column 0 terminates at step 2 and starts again, column 1
    is truncated at step 3, column 2 runs through the window. Values are V(s_{t+1})."""
    rng = np.random.default_rng(seed)
    terminated = np.zeros((T, N), bool)
    truncated = np.zeros((T, N), bool)
    terminated[2, 0] = True
    truncated[3, 1] = True
    return SimpleNamespace(
        obs=rng.normal(size=(T, N, OBS)), next_obs=rng.normal(size=(T, N, OBS)),
        logits=rng.normal(size=(T, N, A)), actions=rng.integers(0, A, (T, N)),
        rewards=rng.normal(size=(T, N)), next_values=rng.normal(size=(T, N)),
        advantages=rng.normal(size=(T, N)), terminated=terminated, truncated=truncated)


def per_column(fn, *arrays):
    """rlax functions take one sequence [T]: vmap them over our env axis (1 of [T, N], 0 of
    a per-env [N])."""
    axes = tuple(1 if np.ndim(x) >= 2 else 0 for x in arrays)
    return jax.vmap(fn, in_axes=axes, out_axes=1)(*arrays)


# ---------------------------------------------------------------------------- rlax returns


def test_rlax_returns_take_one_discount_array(rlax):
    """rlax's discount_t is gamma * (1 - done_t), one array; ours takes dones and gamma."""
    e = episodes()
    dones = e.terminated | e.truncated
    bootstrap = e.next_values[-1]
    ours = R.discounted_returns(e.rewards, dones, GAMMA, bootstrap=bootstrap)
    theirs = per_column(rlax.discounted_returns, e.rewards, GAMMA * (1.0 - dones), bootstrap)
    np.testing.assert_allclose(theirs, ours, rtol=1e-13, atol=1e-13)
    # the same array with the done ignored is a different return: the discount carries it
    ignored = per_column(rlax.discounted_returns, e.rewards, np.full((T, N), GAMMA), bootstrap)
    assert np.abs(ignored - ours).max() > 0.1


def test_rlax_lambda_returns_at_one_use_only_the_last_value(rlax):
    """lambda_returns(lambda=1) is our reward-to-go bootstrapped from v_t[-1]; the other
    values do not enter."""
    e = episodes()
    discount = GAMMA * (1.0 - e.terminated)
    ours = R.discounted_returns(e.rewards, e.terminated, GAMMA, bootstrap=e.next_values[-1])
    theirs = per_column(lambda r, d, v: rlax.lambda_returns(r, d, v, lambda_=1.0),
                        e.rewards, discount, e.next_values)
    np.testing.assert_allclose(theirs, ours, rtol=1e-13, atol=1e-13)
    other = e.next_values.copy()
    other[:-1] += 100.0
    theirs_other = per_column(lambda r, d, v: rlax.lambda_returns(r, d, v, lambda_=1.0),
                              e.rewards, discount, other)
    np.testing.assert_allclose(theirs_other, ours, rtol=1e-13, atol=1e-13)


def test_rlax_truncation_bootstraps_through_lambda(rlax):
    """rlax has no truncation flag: a truncated step keeps its discount gamma and
    bootstraps through lambda_t = 0 and v_t = V(final obs). Ours ends the episode
    (done = terminated | truncated) and adds gamma * V(final obs) to the reward."""
    e = episodes()
    discount = GAMMA * (1.0 - e.terminated)
    lambdas = 1.0 - e.truncated
    theirs = per_column(rlax.lambda_returns, e.rewards, discount, e.next_values, lambdas)
    folded = e.rewards + GAMMA * e.truncated * e.next_values
    ours = R.discounted_returns(folded, e.terminated | e.truncated, GAMMA,
                                bootstrap=e.next_values[-1])
    np.testing.assert_allclose(theirs, ours, rtol=1e-13, atol=1e-13)
    # without the fold, the truncated step loses exactly gamma * V(final obs)
    plain = R.discounted_returns(e.rewards, e.terminated | e.truncated, GAMMA,
                                 bootstrap=e.next_values[-1])
    np.testing.assert_allclose(theirs[3, 1] - plain[3, 1], GAMMA * e.next_values[3, 1],
                               rtol=1e-12)


# ------------------------------------------------------------------------------- rlax loss


def rlax_loss(rlax, logits, actions, adv, w, **kwargs):
    """policy_gradient_loss per column, then the mean over columns (its usage with vmap)."""
    per_env = jax.vmap(
        lambda l, a, d, ww: rlax.policy_gradient_loss(l, a, d, ww, **kwargs),
        in_axes=(1, 1, 1, 1))(logits, actions, adv, w)
    return jnp.mean(per_env)


def our_loss(logits, actions, adv, mask=None, reduction="mean"):
    return L.reinforce_loss(D.categorical_log_prob(logits, actions), adv, mask, reduction)


def test_rlax_policy_gradient_loss_is_our_mean_loss(rlax):
    """With every step valid (w_t = 1), rlax's loss and its gradient equal ours with
    reduction="mean": both are -mean(log pi(a|s) * A) with the advantage stop-gradiented."""
    e = episodes()
    ones = np.ones((T, N))
    v_ours, g_ours = jax.value_and_grad(our_loss)(e.logits, e.actions, e.advantages)
    v_rlax, g_rlax = jax.value_and_grad(
        lambda l: rlax_loss(rlax, l, e.actions, e.advantages, ones))(e.logits)
    np.testing.assert_allclose(v_rlax, v_ours, rtol=1e-13)
    np.testing.assert_allclose(g_rlax, g_ours, rtol=1e-12, atol=1e-15)
    # reduction="sum" is T * N times larger
    np.testing.assert_allclose(our_loss(e.logits, e.actions, e.advantages, reduction="sum"),
                               T * N * v_rlax, rtol=1e-13)


def test_rlax_weights_are_not_a_mask(rlax):
    """Passing the padding mask as w_t zeroes the padded terms but still divides by T (and
    the vmap's mean by N): rlax's loss is our reduction="sum" over T * N. Ours with the mask
    and "mean" divides by the valid count, so the two differ by valid / (T * N)."""
    e = episodes()
    mask = np.ones((T, N))
    mask[4:, 0] = 0.0
    mask[2:, 2] = 0.0
    theirs = rlax_loss(rlax, e.logits, e.actions, e.advantages, mask)
    summed = our_loss(e.logits, e.actions, e.advantages, mask, reduction="sum")
    np.testing.assert_allclose(theirs, summed / (T * N), rtol=1e-13)
    mean = our_loss(e.logits, e.actions, e.advantages, mask, reduction="mean")
    np.testing.assert_allclose(theirs, mean * mask.sum() / (T * N), rtol=1e-13)
    assert abs(theirs - mean) > 0.1 * abs(mean)


def test_rlax_stop_gradient_on_the_advantage(rlax):
    """Both stop the gradient at the advantage by default; rlax's use_stop_gradient=False
    lets it through as -log pi(a|s) / (T * N), which ours never does."""
    e = episodes()
    ones = np.ones((T, N))
    g_ours = jax.grad(lambda d: our_loss(e.logits, e.actions, d))(e.advantages)
    g_rlax = jax.grad(lambda d: rlax_loss(rlax, e.logits, e.actions, d, ones))(e.advantages)
    assert not np.any(g_ours) and not np.any(g_rlax)
    g_open = jax.grad(lambda d: rlax_loss(rlax, e.logits, e.actions, d, ones,
                                          use_stop_gradient=False))(e.advantages)
    log_pi = D.categorical_log_prob(e.logits, e.actions)
    np.testing.assert_allclose(g_open, -log_pi / (T * N), rtol=1e-13)


def test_rlax_entropy_loss_is_minus_our_entropy(rlax):
    """rlax's entropy_loss is -mean(H): a loss to add. Ours reports +H and subtracts
    ent_coef * H from the loss, so loss + c * rlax_entropy_loss is our objective."""
    e = episodes()
    ones = np.ones((T, N))
    theirs = jnp.mean(jax.vmap(rlax.entropy_loss, in_axes=1)(e.logits, ones))
    log_pi = D.categorical_log_prob(e.logits, e.actions)
    loss, metrics = L.reinforce_objective(log_pi, e.advantages, D.categorical_entropy(e.logits),
                                          ent_coef=0.01)
    np.testing.assert_allclose(theirs, -metrics["entropy"], rtol=1e-13)
    np.testing.assert_allclose(loss, metrics["pg_loss"] + 0.01 * theirs, rtol=1e-13)


def test_rlax_policy_gradient_loss_takes_one_categorical_action(rlax):
    """policy_gradient_loss is categorical only: actions [T], logits [T, A]; a multi-dimensional
    action is refused by its rank check. Its diagonal Gaussian sums the log-density over the
    action axis, as our normal_log_prob does."""
    e = episodes()
    with pytest.raises(AssertionError):
        rlax.policy_gradient_loss(e.logits[:, 0], np.stack([e.actions[:, 0]] * 2, -1),
                                  e.advantages[:, 0], np.ones(T))
    rng = np.random.default_rng(1)
    mean, log_std, act = rng.normal(size=(3, T, 2))
    theirs = rlax.gaussian_diagonal().logprob(act, mean, np.exp(log_std))
    np.testing.assert_allclose(theirs, D.normal_log_prob(mean, log_std, act), rtol=1e-12)


# ------------------------------------------------------------------------------- TorchRL


@pytest.fixture(scope="module")
def trl():
    pytest.importorskip("torchrl")
    return SimpleNamespace(
        torch=pytest.importorskip("torch"),
        TensorDict=pytest.importorskip("tensordict").TensorDict,
        TensorDictModule=pytest.importorskip("tensordict.nn").TensorDictModule,
        modules=pytest.importorskip("torchrl.modules"),
        objectives=pytest.importorskip("torchrl.objectives"),
    )


class Weights(SimpleNamespace):
    """The actor's and critic's linear weights, drawn once and given to both sides:
    ``pi_w [out, in]``, ``pi_b``, ``v_w [1, in]``, ``v_b [1]`` (torch's layout)."""

    @classmethod
    def draw(cls, out=A, seed=1):
        rng = np.random.default_rng(seed)
        return cls(pi_w=rng.normal(size=(out, OBS)) * 0.5, pi_b=rng.normal(size=out) * 0.5,
                   v_w=rng.normal(size=(1, OBS)), v_b=rng.normal(size=1))

    def value(self, obs):
        return obs @ self.v_w[0] + self.v_b[0]


def linear(trl, w, b):
    layer = trl.torch.nn.Linear(w.shape[1], w.shape[0]).double()
    with trl.torch.no_grad():
        layer.weight.copy_(trl.torch.from_numpy(w))
        layer.bias.copy_(trl.torch.from_numpy(b))
    return layer


def loc_scale(trl, layer, log_std):
    """A torch module: obs -> (loc from ``layer``, a fixed scale exp(log_std) per dim)."""
    torch = trl.torch

    class LocScale(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = layer
            self.register_buffer("scale", torch.from_numpy(np.exp(log_std)))

        def forward(self, obs):
            loc = self.layer(obs)
            return loc, self.scale.expand_as(loc)

    return LocScale()


def reinforce_loss_module(trl, weights, *, distribution="categorical", log_std=None,
                          estimator="TD1", **kwargs):
    """TorchRL's ReinforceLoss with a linear actor and a linear critic."""
    TDM, M = trl.TensorDictModule, trl.modules
    layer = linear(trl, weights.pi_w, weights.pi_b)
    if distribution == "categorical":
        net = TDM(layer, in_keys=["observation"], out_keys=["logits"])
        actor = M.ProbabilisticActor(net, in_keys=["logits"],
                                     distribution_class=trl.torch.distributions.Categorical)
    else:
        net = TDM(loc_scale(trl, layer, log_std), in_keys=["observation"],
                  out_keys=["loc", "scale"])
        dist = {"normal": trl.torch.distributions.Normal,
                "independent": M.IndependentNormal}[distribution]
        actor = M.ProbabilisticActor(net, in_keys=["loc", "scale"], distribution_class=dist)
    critic = M.ValueOperator(linear(trl, weights.v_w, weights.v_b), in_keys=["observation"])
    loss = trl.objectives.ReinforceLoss(actor, critic, **kwargs)
    if estimator is not None:
        loss.make_value_estimator(getattr(trl.objectives.ValueEstimators, estimator),
                                  gamma=GAMMA)
    return loss


def tensordict(trl, e, actions=None):
    """Our time-major [T, N] batch as TorchRL's batch-major [N, T] TensorDict, rewards and
    flags with their trailing [..., 1]."""
    t = trl.torch.from_numpy

    def bm(x, trailing=False):  # [T, N, ...] -> [N, T, ...]
        x = np.swapaxes(np.asarray(x), 0, 1)
        return t(np.ascontiguousarray(x[..., None] if trailing else x))

    actions = e.actions if actions is None else actions
    return trl.TensorDict({
        "observation": bm(e.obs), "action": bm(actions),
        "next": {"observation": bm(e.next_obs), "reward": bm(e.rewards, True),
                 "done": bm(e.terminated | e.truncated, True),
                 "terminated": bm(e.terminated, True)},
    }, batch_size=[N, T])


def tm(x):
    """TorchRL's [N, T, (1)] -> our [T, N]."""
    x = x.detach().numpy()
    return np.swapaxes(x[..., 0] if x.ndim == 3 else x, 0, 1)


def torch_grads(trl, scalar, params):
    return [g.numpy() for g in trl.torch.autograd.grad(scalar, list(params))]


def our_logits(params, obs):
    w, b = params
    return obs @ w.T + b


def f32(x):
    """TorchRL's value estimators keep gamma and lambda as torch.tensor(x): float32 buffers
    (torch's default dtype), whatever the data's dtype."""
    return float(np.float32(x))


def test_torchrl_td1_target_is_our_reward_to_go(trl):
    """TD1's value target is our reward-to-go, bootstrapped at the window's end from the
    critic's V(next obs): batch-major [N, T, 1] there, time-major [T, N] here. Its gamma is
    float32 even on float64 data; ours is cast to the rewards' dtype, so float64 agrees to
    round-off only with gamma = float32(0.9), and is 1e-7 away with 0.9."""
    e = episodes()
    e.truncated[:] = False
    w = Weights.draw()
    td = tensordict(trl, e)
    reinforce_loss_module(trl, w)(td)
    bootstrap = w.value(e.next_obs[-1])
    ours = R.discounted_returns(e.rewards, e.terminated, f32(GAMMA), bootstrap=bootstrap)
    np.testing.assert_allclose(tm(td["value_target"]), ours, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(tm(td["advantage"]), ours - w.value(e.obs), rtol=1e-12,
                               atol=1e-12)
    exact = R.discounted_returns(e.rewards, e.terminated, GAMMA, bootstrap=bootstrap)
    assert 1e-8 < np.abs(tm(td["value_target"]) - exact).max() < 1e-6


def test_torchrl_truncation_bootstraps_from_the_next_state(trl):
    """TorchRL keeps done and terminated apart: at a truncated step (done, not terminated)
    TD1 bootstraps from V(next obs). Ours ends the episode at done, so the bootstrap has to
    be folded into the reward: r + gamma * V(final obs)."""
    e = episodes()
    w = Weights.draw()
    td = tensordict(trl, e)
    reinforce_loss_module(trl, w)(td)
    v_next = w.value(e.next_obs)
    dones = e.terminated | e.truncated
    folded = e.rewards + f32(GAMMA) * e.truncated * v_next
    ours = R.discounted_returns(folded, dones, f32(GAMMA), bootstrap=v_next[-1])
    np.testing.assert_allclose(tm(td["value_target"]), ours, rtol=1e-12, atol=1e-12)
    plain = R.discounted_returns(e.rewards, dones, f32(GAMMA), bootstrap=v_next[-1])
    np.testing.assert_allclose(tm(td["value_target"])[3, 1] - plain[3, 1],
                               f32(GAMMA) * v_next[3, 1], rtol=1e-12)


def gae(rewards, values, next_values, terminated, dones, gamma, gamma_lam):
    """Generalized advantage estimation, written out: delta_t + gamma lambda A_{t+1}."""
    adv = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1:])
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * (1 - terminated[t]) * next_values[t] - values[t]
        running = delta + gamma_lam * (1 - dones[t]) * running
        adv[t] = running
    return adv


def test_torchrl_default_advantage_is_gae(trl):
    """Without make_value_estimator, ReinforceLoss's advantage is GAE with gamma 0.99 and
    lambda 0.95 from the critic, not the Monte-Carlo G - V of REINFORCE."""
    e = episodes()
    w = Weights.draw()
    td = tensordict(trl, e)
    reinforce_loss_module(trl, w, estimator=None)(td)
    dones = e.terminated | e.truncated
    # gamma * lambda is a float32 product there too
    gamma_lam = float(np.float32(0.99) * np.float32(0.95))
    expected = gae(e.rewards, w.value(e.obs), w.value(e.next_obs), e.terminated, dones,
                   f32(0.99), gamma_lam)
    np.testing.assert_allclose(tm(td["advantage"]), expected, rtol=1e-12, atol=1e-12)
    mc = R.discounted_returns(e.rewards + 0.99 * e.truncated * w.value(e.next_obs), dones,
                              0.99, bootstrap=w.value(e.next_obs[-1])) - w.value(e.obs)
    assert np.abs(tm(td["advantage"]) - mc).max() > 0.1


def test_torchrl_actor_loss_is_our_mean_loss(trl):
    """loss_actor is -log pi(a|s) * A.detach() averaged over all N * T elements: our
    reinforce_loss with reduction="mean" on the same advantage, in value and in the actor's
    gradient. The critic gets no gradient from it (the estimator runs on detached critic
    parameters), as our stop_gradient(V) gives none. There is no entropy term."""
    e = episodes()
    w = Weights.draw()
    td = tensordict(trl, e)
    module = reinforce_loss_module(trl, w)
    out = module(td)
    assert set(out.keys()) == {"loss_actor", "loss_value"}
    adv = tm(td["advantage"])
    ours, grads = jax.value_and_grad(lambda p: our_loss(our_logits(p, e.obs), e.actions, adv))(
        (w.pi_w, w.pi_b))
    np.testing.assert_allclose(out["loss_actor"].item(), ours, rtol=1e-12)
    theirs = torch_grads(trl, out["loss_actor"], module.actor_network_params.values(True, True))
    for g_t, g_j in zip(theirs, grads):
        np.testing.assert_allclose(g_t, g_j, rtol=1e-10, atol=1e-14)
    critic = list(module.critic_network_params.values(True, True))
    unused = trl.torch.autograd.grad(out["loss_actor"], critic, allow_unused=True)
    assert critic and all(g is None for g in unused)
    # sum over every element is N * T times the mean
    np.testing.assert_allclose(
        reinforce_loss_module(trl, w, reduction="sum")(tensordict(trl, e))["loss_actor"].item(),
        N * T * ours, rtol=1e-12)


def test_torchrl_value_loss_is_smooth_l1_without_a_coefficient(trl):
    """The critic's loss defaults to smooth L1 (Huber, beta 1) of V - target, and is
    returned apart, so a sum of TorchRL's terms weights it by 1. Ours is 0.5 * MSE
    (vf_coef=0.5); loss_critic_type="l2" gives our MSE, and our objective with vf_coef=1
    is loss_actor + loss_value."""
    e = episodes()
    w = Weights.draw()
    td = tensordict(trl, e)
    out = reinforce_loss_module(trl, w)(td)
    target, values = tm(td["value_target"]), w.value(e.obs)
    diff = np.abs(values - target)
    huber = np.where(diff < 1.0, 0.5 * diff**2, diff - 0.5).mean()
    np.testing.assert_allclose(out["loss_value"].item(), huber, rtol=1e-12)

    out = reinforce_loss_module(trl, w, loss_critic_type="l2")(tensordict(trl, e))
    log_pi = D.categorical_log_prob(our_logits((w.pi_w, w.pi_b), e.obs), e.actions)
    loss, metrics = L.reinforce_objective(log_pi, target, jnp.zeros((T, N)), values=values,
                                          vf_coef=1.0)
    np.testing.assert_allclose(out["loss_value"].item(), metrics["value_loss"], rtol=1e-12)
    np.testing.assert_allclose((out["loss_actor"] + out["loss_value"]).item(), loss,
                               rtol=1e-12)


def test_torchrl_mask_divides_by_the_valid_count(trl):
    """A ("collector", "mask") entry masks both losses and divides by the valid count, as
    our mask with reduction="mean" does."""
    e = episodes()
    e.truncated[:] = False
    e.terminated[3, 2] = True  # each padded column ends before its padding
    mask = np.ones((T, N), bool)
    mask[3:, 0] = False
    mask[4:, 2] = False
    w = Weights.draw()
    td = tensordict(trl, e)
    td.set(("collector", "mask"), trl.torch.from_numpy(np.ascontiguousarray(mask.T)))
    out = reinforce_loss_module(trl, w, loss_critic_type="l2")(td)
    adv, target = tm(td["advantage"]), tm(td["value_target"])
    log_pi = D.categorical_log_prob(our_logits((w.pi_w, w.pi_b), e.obs), e.actions)
    _, metrics = L.reinforce_objective(log_pi, target, jnp.zeros((T, N)), mask=mask,
                                       values=w.value(e.obs))
    np.testing.assert_allclose(out["loss_actor"].item(), metrics["pg_loss"], rtol=1e-12)
    np.testing.assert_allclose(out["loss_value"].item(), metrics["value_loss"], rtol=1e-12)
    unmasked = our_loss(our_logits((w.pi_w, w.pi_b), e.obs), e.actions, adv)
    assert abs(out["loss_actor"].item() - unmasked) > 1e-3


def test_torchrl_normal_log_prob_is_averaged_over_action_dims(trl):
    """With torch's Normal, log_prob is per action dim [N, T, D] and the mean runs over D
    too: the loss is ours (summed over D) divided by D. IndependentNormal sums over D, as
    our normal_log_prob does, and agrees with ours."""
    e = episodes()
    dims = 2
    w = Weights.draw(out=dims)
    log_std = np.array([-0.3, 0.4])
    rng = np.random.default_rng(2)
    actions = rng.normal(size=(T, N, dims))
    td = tensordict(trl, e, actions=actions)
    per_dim = reinforce_loss_module(trl, w, distribution="normal", log_std=log_std)(td)
    adv = tm(td["advantage"])
    mean = e.obs @ w.pi_w.T + w.pi_b
    ours = L.reinforce_loss(D.normal_log_prob(mean, log_std, actions), adv)
    np.testing.assert_allclose(per_dim["loss_actor"].item(), ours / dims, rtol=1e-12)
    joint = reinforce_loss_module(trl, w, distribution="independent", log_std=log_std)(
        tensordict(trl, e, actions=actions))
    np.testing.assert_allclose(joint["loss_actor"].item(), ours, rtol=1e-12)
