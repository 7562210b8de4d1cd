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
