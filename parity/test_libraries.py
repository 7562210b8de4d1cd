"""Our loss and returns against rlax's and TorchRL's on the same inputs.

Each test shows one convention: either that the two sides agree, or by exactly how much
they differ and which of our settings makes them agree (README, "Conventions of other
libraries"). rlax and TorchRL are optional extras (``pip install
"reinforce_jax[rlax,torchrl]"``); each library's tests are skipped when it is missing.
Everything runs in float64, and the batches are small fixed random draws.
"""

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
