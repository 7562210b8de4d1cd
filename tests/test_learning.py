"""Learning actually happens. CI runs the short check; ``pytest -m slow`` runs the full ones
(the acceptance numbers of the README: CartPole defaults, the documented Acrobot config)."""

import numpy as np
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.driver import final_returns, run_training

ACROBOT = TrainConfig(env="Acrobot-v1", num_envs=64, num_updates=100, return_mode="episode",
                      ent_coef=0.01)


def test_cartpole_short_run_learns():
    # A uniform random policy scores about 22 on CartPole.
    cfg = TrainConfig(num_envs=16, num_updates=30, hidden_sizes=(32, 32), learning_rate=1e-2)
    result = run_training(cfg, num_seeds=4, progress=False)
    start = result.metrics["episode_return"][:, :3].mean()
    final = final_returns(result, last=5)
    assert start < 40
    assert final.mean() > 120, final


@pytest.mark.slow
def test_cartpole_defaults_solve_15_of_16_seeds():
    final = final_returns(run_training(TrainConfig(), num_seeds=16, progress=False))
    assert (final >= 475).sum() >= 15, final


@pytest.mark.slow
def test_acrobot_documented_config_reaches_minus_100():
    final = final_returns(run_training(ACROBOT, num_seeds=16, progress=False))
    assert np.mean(final) >= -100, final


DIGITMATCH100 = TrainConfig(env="DigitMatch-100-onehot", num_envs=4096, group_size=32,
                            baseline="group", num_updates=4000, hidden_sizes=(),
                            head_bias=False, learning_rate=0.1, ent_coef=0.2,
                            normalize_returns="none", max_grad_norm=float("inf"))


def _p_exact(result, n, cfg=None):
    import jax

    from reinforce_jax.policies import DiscretePolicy

    policy = DiscretePolicy(n, (), head_bias=True if cfg is None else cfg.head_bias)
    logits, _ = jax.vmap(lambda p: policy.apply(
        p, jax.nn.one_hot(np.arange(n), n)))(result.params)
    probs = np.asarray(jax.nn.softmax(logits, -1))
    return probs[:, np.arange(n), np.arange(n)].mean(-1)


def test_digitmatch10_short_run_beats_chance():
    # Chance is 0.1 (seen 0.45-0.57 here); the full run (300 updates) reaches 0.999.
    cfg = TrainConfig(env="DigitMatch-10-onehot", num_envs=128, num_updates=60,
                      hidden_sizes=(), learning_rate=0.1, max_grad_norm=float("inf"))
    p_exact = _p_exact(run_training(cfg, num_seeds=2, chunk_updates=60, progress=False), 10)
    assert (p_exact > 0.3).all(), p_exact  # 3x chance after 60 updates


def test_linewalk_short_run_learns_to_walk_right():
    # Dithering for 50 steps pays 0.5 and walking left -0.9; walking right pays 1.1.
    cfg = TrainConfig(env="LineWalk", num_envs=32, num_updates=40, hidden_sizes=(32,),
                      learning_rate=1e-2)
    final = final_returns(run_training(cfg, num_seeds=2, chunk_updates=40, progress=False),
                          last=5)
    assert (final > 0.9).all(), final


@pytest.mark.slow
def test_digitmatch10_reaches_99_percent_exact():
    cfg = TrainConfig(env="DigitMatch-10-onehot", num_envs=256, num_updates=300,
                      hidden_sizes=(), learning_rate=0.1, max_grad_norm=float("inf"))
    p_exact = _p_exact(run_training(cfg, num_seeds=16, chunk_updates=100, progress=False), 10)
    assert p_exact.mean() >= 0.99, p_exact


def test_digitmatch100_group_baseline_short_run_beats_chance():
    # Chance is 0.01. The README config with 300 of its 4000 updates, on 1024 envs.
    cfg = DIGITMATCH100.replace(num_envs=1024, num_updates=300)
    p_exact = _p_exact(run_training(cfg, num_seeds=1, chunk_updates=300, progress=False), 100,
                       cfg)
    assert (p_exact > 0.15).all(), p_exact  # 15x chance (0.26 seen)


@pytest.mark.slow
def test_digitmatch100_reaches_95_percent_exact():
    result = run_training(DIGITMATCH100, num_seeds=8, chunk_updates=500, progress=False)
    p_exact = _p_exact(result, 100, DIGITMATCH100)
    assert p_exact.mean() >= 0.95, p_exact
