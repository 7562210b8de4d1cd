"""Every gymnax environment trains by name: a couple of tiny updates each, finite metrics,
the right shapes; the torso follows the observation; MNISTBandit explains itself."""

import flax.linen as nn
import gymnax
import jax
import numpy as np
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.cli import main
from reinforce_jax.driver import final_returns, run_training
from reinforce_jax.envs import describe_envs, make_env
from reinforce_jax.policies import Conv3x3, prepare_obs
from reinforce_jax.train import Trainer, make_policy

NEEDS_DOWNLOAD = {"MNISTBandit-bsuite"}
BUILDABLE = [n for n in gymnax.registered_envs if n not in NEEDS_DOWNLOAD]


@pytest.mark.parametrize("name", BUILDABLE)
def test_every_gymnax_env_trains_a_couple_of_updates(name):
    cfg = TrainConfig(env=name, num_envs=2, num_updates=2, horizon=8, hidden_sizes=(8,))
    trainer = Trainer(cfg)
    state, metrics = jax.jit(trainer.run_updates, static_argnums=2)(
        trainer.init(jax.random.key(0)), cfg.hyperparams, 2)
    for key, value in metrics.items():
        assert value.shape == (2,), key
        assert np.isfinite(np.asarray(value)).all(), (key, value)
    assert metrics["env_steps"].sum() > 0
    assert state.last_return.dtype == np.float32  # returns are float, whatever obs is
    assert int(state.updates) == 2  # (params may stay put: 8 steps can pay no reward)


@pytest.mark.parametrize("name, torso", [("Breakout-MinAtar", "conv"), ("Pong-misc", "conv"),
                                         ("Catch-bsuite", "mlp"), ("CartPole-v1", "mlp")])
def test_auto_torso_is_conv_for_images_only(name, torso):
    _, _, spec = make_env(name)
    policy = make_policy(TrainConfig(env=name), spec)
    assert policy.torso == torso
    params = policy.init(jax.random.key(0), np.zeros((1, *spec.obs_shape), np.float32))
    assert ("conv_0" in params["params"]) == (torso == "conv")


def test_conv_torso_equals_flax_conv_under_vmap_over_seeds():
    # the matmul form of the 3x3 conv gives nn.Conv's output from nn.Conv's parameters,
    # also with a kernel per seed (the vmapped case it exists for)
    x = jax.random.normal(jax.random.key(0), (3, 5, 10, 10, 4))  # [seeds, envs, H, W, C]
    keys = jax.random.split(jax.random.key(1), 3)
    params = jax.vmap(lambda k: Conv3x3(16).init(k, x[0]))(keys)
    ours = jax.vmap(Conv3x3(16).apply)(params, x)
    flax_conv = nn.Conv(16, (3, 3), padding="VALID")
    ref = jax.vmap(lambda p, xs: flax_conv.apply(p, xs))(params, x)
    assert ours.shape == ref.shape == (3, 5, 8, 8, 16)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)
    assert jax.tree.map(np.shape, params["params"]) == {"kernel": (3, 3, 3, 4, 16),
                                                        "bias": (3, 16)}


def test_observations_become_float_features():
    one_hot = prepare_obs(np.array([[2], [0]], np.int32)[..., 0], 0, 4)  # FrozenLake-like
    np.testing.assert_array_equal(one_hot, [[0, 0, 1, 0], [1, 0, 0, 0]])
    scalar = prepare_obs(np.array([1.5, 2.0], np.float32), 0)
    assert scalar.shape == (2, 1)
    ints = prepare_obs(np.array([[1, 2, 3, 4]], np.int32), 1)  # FourRooms-like
    assert ints.dtype == np.float32 and ints.shape == (1, 4)


def test_conv_is_refused_for_vector_observations(capsys):
    with pytest.raises(ValueError, match="torso='conv' with env='CartPole-v1'"):
        TrainConfig(torso="conv").validate()


def test_mnist_bandit_says_how_to_provide_its_data(monkeypatch, tmp_path):
    monkeypatch.setattr("reinforce_jax.envs.MNIST_DIR", tmp_path)
    with pytest.raises(ValueError, match="needs the MNIST files.*train-images-idx3-ubyte.gz"):
        make_env("MNISTBandit-bsuite")


def test_envs_command_lists_every_env_with_its_spaces(capsys):
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    for name in gymnax.registered_envs:
        assert name in out
    assert "Box(10, 10, 4)" in out and "Discrete(3)" in out  # Breakout-MinAtar
    assert "Discrete(16)" in out  # FrozenLake's observation
    rows = {r[0]: r for r in describe_envs()}
    assert rows["Pendulum-v1"][2].startswith("Box(1,) in [-2, 2]")


@pytest.mark.parametrize("rollout", ["episodic", "fixed"])
def test_a_wrapper_takes_effect_in_both_rollout_modes(rollout):
    """A user's wrapper that pays 10x: same seed, same actions, ten times the returns."""
    from gymnax.wrappers.purerl import GymnaxWrapper

    from reinforce_jax.envs import register_env

    class TenfoldReward(GymnaxWrapper):
        def step(self, key, state, action, params=None):
            obs, state, reward, terminated, truncated, info = self._env.step(
                key, state, action, params)
            return obs, state, 10.0 * reward, terminated, truncated, info

    env, params = gymnax.make("CartPole-v1")
    register_env("CartPole-v1-tenfold", lambda: (TenfoldReward(env), params))
    returns = {}
    for name in ("CartPole-v1", "CartPole-v1-tenfold"):
        cfg = TrainConfig(env=name, rollout=rollout, num_envs=3, num_updates=1, horizon=40,
                          hidden_sizes=(8,))
        trainer = Trainer(cfg)  # one update: both rollouts act with the same initial policy
        _, metrics = jax.jit(trainer.run_updates, static_argnums=2)(
            trainer.init(jax.random.key(3)), cfg.hyperparams, 1)
        returns[name] = np.asarray(metrics["episode_return"])
    np.testing.assert_allclose(returns["CartPole-v1-tenfold"], 10 * returns["CartPole-v1"],
                               rtol=1e-5)
    assert returns["CartPole-v1"].min() > 0


def test_catch_learns_well_above_a_random_policy():
    """bsuite's Catch: +1 for catching the ball, -1 for missing it; a random policy
    averages about -0.6."""
    cfg = TrainConfig(env="Catch-bsuite", hidden_sizes=(32,), num_envs=32, horizon=10,
                      learning_rate=1e-2, num_updates=150)
    trainer = Trainer(cfg)
    run = jax.jit(jax.vmap(lambda k: trainer.run_updates(trainer.init(k), cfg.hyperparams,
                                                         150)))
    _, metrics = run(jax.vmap(jax.random.key)(np.arange(4)))
    returns = np.asarray(metrics["episode_return"])
    assert returns[:, :5].mean() < -0.3  # it starts near random
    assert returns[:, -10:].mean() > 0.3, returns[:, -10:].mean(axis=1)


def test_breakout_minatar_learns_well_above_a_random_policy():
    """MinAtar Breakout with the conv torso: a random policy scores about 0.4 per episode
    (evaluate.random_returns); 60 short updates reach 1.8-2.1 (seen here)."""
    cfg = TrainConfig(env="Breakout-MinAtar", rollout="fixed", horizon=64, num_envs=32,
                      num_updates=60, hidden_sizes=(128,), baseline="separate",
                      learning_rate=3e-3, ent_coef=0.01)
    result = run_training(cfg, num_seeds=2, progress=False)
    assert result.metrics["episode_return"][:, :5].mean() < 0.8  # it starts near random
    final = final_returns(result, last=10)
    assert final.min() > 1.2, final


@pytest.mark.parametrize("name", ["CartPole-v1", "Breakout-MinAtar", "LineWalk"])
def test_episodic_shortcut_trains_exactly_as_the_public_step(name):
    """Episodic mode skips gymnax's auto-reset for an unwrapped env (with the key split
    of ``step`` done for the whole window up front); a wrapper that only passes ``step``
    through forces the public path. Training must not tell them apart."""
    from gymnax.wrappers.purerl import GymnaxWrapper

    from reinforce_jax.envs import register_env
    from reinforce_jax.rollout import _stock_step

    class PassThrough(GymnaxWrapper):
        def step(self, key, state, action, params=None):
            return self._env.step(key, state, action, params)

    env, params, _ = make_env(name)
    register_env(f"{name}-passthrough", lambda: (PassThrough(env), params))
    assert _stock_step(env) and not _stock_step(PassThrough(env))
    out = {}
    for env_name in (name, f"{name}-passthrough"):
        cfg = TrainConfig(env=env_name, num_envs=3, num_updates=3, horizon=30,
                          hidden_sizes=(8,))
        trainer = Trainer(cfg)
        out[env_name] = jax.jit(trainer.run_updates, static_argnums=2)(
            trainer.init(jax.random.key(5)), cfg.hyperparams, 3)
    (state_a, metrics_a), (state_b, metrics_b) = out.values()
    for key in metrics_a:
        np.testing.assert_array_equal(metrics_a[key], metrics_b[key], err_msg=key)
    jax.tree.map(np.testing.assert_array_equal, state_a.params, state_b.params)
