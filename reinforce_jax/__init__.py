"""reinforce_jax: vectorized REINFORCE on gymnax, with PyTorch gradient parity."""

from reinforce_jax.config import HyperParams, TrainConfig
from reinforce_jax.envs import available_envs, make_env, register_env
from reinforce_jax.policy import load_policy
from reinforce_jax.train import Trainer, make_train

__all__ = ["HyperParams", "TrainConfig", "Trainer", "available_envs", "load_policy", "make_env",
           "make_train", "register_env"]
__version__ = "0.1.0"
