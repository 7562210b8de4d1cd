"""Shared fixtures: tiny configs so each test module compiles once and runs fast."""

import pytest

from reinforce_jax import TrainConfig

TINY = dict(env="CartPole-v1", num_envs=4, num_updates=3, horizon=24, hidden_sizes=(8,))


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TrainConfig(**TINY)
