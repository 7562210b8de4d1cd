"""Bad input is refused with the value and the allowed range, before any compile."""

import math

import jax
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.driver import run_training


@pytest.fixture
def no_compile(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("compiled before validating")

    monkeypatch.setattr(jax, "jit", refuse)


@pytest.mark.parametrize("changes, message", [
    (dict(env="CartPole-v9"), r"env='CartPole-v9' is not known; available: .*Acrobot-v1.*"),
    (dict(gamma=1.5), r"gamma=1.5; allowed: 0 <= gamma <= 1"),
    (dict(gamma=-0.1), r"gamma=-0.1; allowed: 0 <= gamma <= 1"),
    (dict(learning_rate=0.0), r"learning_rate=0.0; allowed: a finite number > 0"),
    (dict(learning_rate=-1e-3), r"learning_rate=-0.001"),
    (dict(learning_rate=math.nan), r"learning_rate=nan"),
    (dict(num_envs=0), r"num_envs=0; allowed: an integer >= 1"),
    (dict(num_updates=0), r"num_updates=0; allowed: an integer >= 1"),
    (dict(horizon=-3), r"horizon=-3; allowed: an integer >= 0"),
    (dict(max_grad_norm=0.0), r"max_grad_norm=0.0; allowed: > 0"),
    (dict(ent_coef=-1.0), r"ent_coef=-1.0; allowed: a finite number >= 0"),
    (dict(hidden_sizes=(64, 0)), r"hidden_sizes=\(64, 0\)"),
    (dict(rollout="stream"), r"rollout='stream'; allowed: episodic, fixed"),
    (dict(log_std_min=2.0, log_std_max=-2.0), r"log_std_min=2.0, log_std_max=-2.0"),
    (dict(rollout="fixed", normalize_returns="episode"), r"normalize_returns='episode'"),
    (dict(num_envs=10, group_size=4), r"group_size=4 with num_envs=10; allowed: a divisor"),
    (dict(baseline="group"), r"baseline='group' with group_size=1; allowed: group_size >= 2"),
    (dict(optimizer="rmsprop"), r"optimizer='rmsprop'; allowed: adam, sgd"),
    (dict(grad_chunk_rows=-1), r"grad_chunk_rows=-1; allowed: an integer >= 0"),
])
def test_bad_config_is_rejected_before_compiling(no_compile, changes, message):
    with pytest.raises(ValueError, match=message):
        run_training(TrainConfig(**changes), num_seeds=2, progress=False)


@pytest.mark.parametrize("seeds", [0, -1])
def test_bad_seed_count_is_rejected(no_compile, seeds):
    with pytest.raises(ValueError, match=rf"seeds={seeds}; allowed: an integer >= 1"):
        run_training(TrainConfig(), num_seeds=seeds, progress=False)


def test_default_config_is_valid():
    cfg = TrainConfig().validate()
    assert cfg.env == "CartPole-v1" and cfg.rollout == "episodic"


def test_config_is_frozen():
    with pytest.raises(AttributeError):
        TrainConfig().gamma = 0.5  # type: ignore[misc]
