"""Shared fixtures: tiny configs so each test module compiles once and runs fast."""

import os

import pytest

from reinforce_jax import TrainConfig

# the CLI's persistent compilation cache stays off in tests (and their child processes):
# nothing is written to ~/.cache, and every test compiles what it runs
os.environ.setdefault("REINFORCE_JAX_COMPILE_CACHE", "off")

TINY = dict(env="CartPole-v1", num_envs=4, num_updates=3, horizon=24, hidden_sizes=(8,))


@pytest.fixture(scope="session")
def tiny_config() -> TrainConfig:
    return TrainConfig(**TINY)


def ctrl_c_on_fetch(monkeypatch, n: int):
    """Make the driver's ``n``-th ``jax.device_get`` raise KeyboardInterrupt, as a Ctrl-C
    while a chunk's metrics are fetched; returns the function that undoes it."""
    from reinforce_jax import driver

    real_get, calls = driver.jax.device_get, {"n": 0}

    def interrupted(x):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt
        return real_get(x)

    monkeypatch.setattr(driver.jax, "device_get", interrupted)
    return lambda: monkeypatch.setattr(driver.jax, "device_get", real_get)
