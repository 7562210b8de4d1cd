"""Sutton & Barto's per-time-step updates (update_every="step"), a separate step size for
the value network, and the warning for a value step that must overshoot."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.config import HyperParams
from reinforce_jax.optim import value_labels
from reinforce_jax.train import StabilityWarning, Trainer, value_step_overshoot

BOOK = TrainConfig(env="CartPole-v1", hidden_sizes=(), baseline="separate", optimizer="sgd",
                   update_every="step", learning_rate=0.1, value_learning_rate=0.2,
                   vf_coef=0.5, normalize_returns="none", max_grad_norm=float("inf"),
                   anneal_lr=False, num_envs=1, gamma=1.0, reduction="sum")


def _params(kernel, bias, v_kernel, v_bias):
    f = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    return {"params": {"logits": {"kernel": f(kernel), "bias": f(bias)},
                       "value": {"kernel": f(v_kernel), "bias": f(v_bias)}}}


def test_per_step_mode_equals_the_books_loop_on_a_three_step_episode():
    """A 1-D observation, two actions, rewards (1, 1, 1), γ = 1, so G = (3, 2, 1).
    The book: δ = G_t − V(S_t); w += β δ ∇V; θ += α δ ∇ln π(A_t|S_t), step after step."""
    trainer = Trainer(BOOK)
    alpha, beta = BOOK.learning_rate, BOOK.value_learning_rate
    x = np.array([1.0, 2.0, -1.0])
    actions = np.array([0, 1, 0])
    G = np.array([3.0, 2.0, 1.0])
    params = _params(np.zeros((1, 2)), np.zeros(2), np.zeros((1, 1)), np.zeros(1))
    opt_state = trainer.tx.init(params)
    out, _, loss, aux, _ = jax.jit(trainer.learn)(
        params, opt_state, BOOK.hyperparams, 1.0, jnp.asarray(x[:, None, None], jnp.float32),
        jnp.asarray(actions[:, None]), jnp.asarray(G[:, None], jnp.float32),
        jnp.ones((3, 1), bool), None)

    # the book's loop, written out: softmax gradient onehot(a) - π, linear V = w x + b
    K, b, vk, vb = np.zeros(2), np.zeros(2), 0.0, 0.0
    for t in range(3):
        logits = K * x[t] + b
        pi = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        delta = G[t] - (vk * x[t] + vb)
        vk, vb = vk + beta * delta * x[t], vb + beta * delta
        score = np.eye(2)[actions[t]] - pi
        K, b = K + alpha * delta * score * x[t], b + alpha * delta * score
        if t == 0:  # by hand: V = 0, π = (.5, .5), δ = 3
            np.testing.assert_allclose([vk, vb], [0.6, 0.6])
            np.testing.assert_allclose(K, [0.15, -0.15])
    got = out["params"]
    np.testing.assert_allclose(got["logits"]["kernel"][0], K, rtol=1e-5)
    np.testing.assert_allclose(got["logits"]["bias"], b, rtol=1e-5)
    np.testing.assert_allclose(got["value"]["kernel"][0, 0], vk, rtol=1e-5)
    np.testing.assert_allclose(got["value"]["bias"][0], vb, rtol=1e-5)
    assert np.isfinite(float(loss)) and float(aux["value_loss"]) > 0


def test_padding_after_the_episode_changes_nothing():
    trainer = Trainer(BOOK)
    params = trainer.init(jax.random.key(0)).params
    rng = np.random.default_rng(0)
    obs = jnp.asarray(rng.normal(size=(5, 1, 4)), jnp.float32)
    actions, G = jnp.asarray(rng.integers(0, 2, (5, 1))), jnp.asarray(rng.normal(size=(5, 1)))
    mask = jnp.arange(5)[:, None] < 3
    learn = jax.jit(trainer.learn)
    short = learn(params, trainer.tx.init(params), BOOK.hyperparams, 1.0, obs[:3], actions[:3],
                  G[:3], mask[:3], None)[0]
    padded = learn(params, trainer.tx.init(params), BOOK.hyperparams, 1.0, obs, actions, G,
                   mask, None)[0]
    jax.tree.map(np.testing.assert_array_equal, short, padded)


@pytest.mark.parametrize("update_every", ["batch", "step"])
def test_the_value_network_moves_at_its_own_step_size(update_every):
    """SGD, one step, no clip: policy leaves move by -lr * g, value leaves by -lr_v * g."""
    cfg = BOOK.replace(update_every=update_every, hidden_sizes=(8,), learning_rate=0.01,
                       value_learning_rate=0.3, reduction="mean")
    trainer = Trainer(cfg)
    params = trainer.init(jax.random.key(1)).params
    rng = np.random.default_rng(1)
    obs = jnp.asarray(rng.normal(size=(1, 6, 4)), jnp.float32)  # one time step, 6 envs
    actions = jnp.asarray(rng.integers(0, 2, (1, 6)))
    G = jnp.asarray(rng.normal(size=(1, 6)), jnp.float32)
    mask = jnp.ones((1, 6), bool)
    (_, _), grads = trainer.loss_and_grad(params, cfg.hyperparams, obs, actions, G, mask, None)
    new = trainer.learn(params, trainer.tx.init(params), cfg.hyperparams, 1.0, obs, actions,
                        G, mask, None)[0]
    lrs = jax.tree.map(lambda label: 0.3 if label == "value" else 0.01, value_labels(params))
    expected = jax.tree.map(lambda p, g, lr: p - lr * g, params, grads, lrs)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 new, expected)
    assert sorted(set(jax.tree.leaves(value_labels(params)))) == ["policy", "value"]


def test_value_learning_rate_is_traced_one_compile_for_many_values():
    cfg = BOOK.replace(update_every="batch", num_envs=4, num_updates=2, horizon=16,
                       reduction="mean")
    trainer = Trainer(cfg)
    hp = HyperParams(*(jnp.float32(v) for v in cfg.hyperparams))
    run = jax.jit(jax.vmap(lambda lr_v: trainer.run_updates(
        trainer.init(jax.random.key(0)), hp._replace(value_learning_rate=lr_v), 2)))
    state, _ = run(jnp.array([1e-4, 1e-1], jnp.float32))
    value = state.params["params"]["value"]["kernel"]
    assert not np.allclose(value[0], value[1])  # two value step sizes, one program
    assert run._cache_size() == 1


def test_value_learning_rate_needs_a_value_network_of_its_own():
    with pytest.raises(ValueError, match="value_learning_rate with baseline='shared'"):
        BOOK.replace(baseline="shared").validate()
    with pytest.raises(ValueError, match="value_learning_rate=-1.0; allowed"):
        BOOK.replace(value_learning_rate=-1.0).validate()


def test_a_value_step_that_must_overshoot_is_named_before_training():
    # the case: SGD, summed loss, one episode per update, α_w = 2^-6 through the
    # shared optimizer: 2^-6 * 2 * 0.5 * 500 steps ≈ 7.8 > 2
    bad = TrainConfig(env="CartPole-v1", baseline="separate", optimizer="sgd",
                      learning_rate=2 ** -6, num_envs=1, reduction="sum")
    message = value_step_overshoot(bad, 500)
    assert message is not None and "7.81" in message and "update_every='step'" in message
    with pytest.warns(StabilityWarning, match="the value step overshoots"):
        Trainer(bad)
    # each named fix removes the warning
    for fix in ({"update_every": "step"}, {"reduction": "mean"},
                {"value_learning_rate": 0.9 * 2 / 500}, {"optimizer": "adam"}):
        with warnings.catch_warnings():
            warnings.simplefilter("error", StabilityWarning)
            Trainer(bad.replace(**fix))


def test_per_step_mode_trains_a_gaussian_policy_with_a_baseline():
    cfg = TrainConfig(env="Pendulum-v1", hidden_sizes=(8,), baseline="separate",
                      update_every="step", value_learning_rate=1e-2, num_envs=3,
                      num_updates=2, horizon=12)
    trainer = Trainer(cfg)
    start = trainer.init(jax.random.key(0))
    state, metrics = jax.jit(trainer.run_updates, static_argnums=2)(start, cfg.hyperparams, 2)
    assert all(np.isfinite(np.asarray(v)).all() for v in metrics.values())
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), state.params, start.params)
    assert min(jax.tree.leaves(moved)) > 0  # every leaf, policy and value, took steps
    assert int(state.updates) == 2
