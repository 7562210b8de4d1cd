"""A typical PyTorch REINFORCE script for CartPole, its JAX port, and the check that the two
compute the same gradients and Adam steps:

    reinforce-jax parity examples/torch_reinforce_port.py

The torch half is written the way the common single-file scripts are: a 4 -> 128 ReLU ->
2 softmax policy, actions from ``Categorical(probs)``, reward-to-go by a backwards loop,
returns normalized with torch's (unbiased) std plus float32's eps, the loss summed over
the episode, Adam at 1e-2. Its update is replayed here on recorded episodes, because
parity needs both sides to see identical inputs; the batches are random episodes of
CartPole's shape.

The JAX half is a flax module and a loss built from ``parity.conventions``, whose
``Conventions`` say which torch conventions the port copies. Change one (say
``std_ddof=0``) and the command fails and names it.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from parity.conventions import Conventions, categorical_log_prob, reinforce_loss

GAMMA = 0.99
EPS = np.finfo(np.float32).eps.item()  # the scripts' normalization epsilon
EPISODE = 40


# ---------------------------------------------------------------- the torch script
class Policy(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = torch.nn.Linear(4, 128)
        self.affine2 = torch.nn.Linear(128, 2)

    def forward(self, x):
        return F.softmax(self.affine2(F.relu(self.affine1(x))), dim=-1)


def select_action(policy, state):
    """What the script calls at every step of an episode (not needed for the check)."""
    probs = policy(torch.as_tensor(state, dtype=torch.float32)[None])
    m = Categorical(probs)
    action = m.sample()
    return action.item(), m.log_prob(action)


def finish_episode(log_probs, rewards, dtype=torch.float32):
    """The script's update rule: the loss of one finished episode."""
    R, returns = 0.0, []
    for r in reversed(rewards):
        R = r + GAMMA * R
        returns.insert(0, R)
    # the scripts write torch.tensor(returns), which is float32 whatever the model's dtype:
    # that alone would hold float64 agreement to float32 round-off, so the dtype is passed
    returns = torch.tensor(returns, dtype=dtype)
    returns = (returns - returns.mean()) / (returns.std() + EPS)
    return torch.stack([-lp * G for lp, G in zip(log_probs, returns)]).sum()


torch.manual_seed(543)
torch_model = Policy()


def torch_loss(model, batch):
    """Replay a recorded episode through the script's update."""
    log_probs = Categorical(model(batch["obs"])).log_prob(batch["actions"])
    return finish_episode(list(log_probs), batch["rewards"].tolist(), batch["rewards"].dtype)


# ---------------------------------------------------------------- the JAX port
class FlaxPolicy(nn.Module):
    """The same network, returning logits (the port's log-probabilities use log_softmax,
    which equals the script's probs form while no probability is below float eps)."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.relu(nn.Dense(128)(x)))


jax_model = FlaxPolicy()
example_input = jnp.zeros((1, 4))
# the script's conventions: unbiased std (torch's default), float32's eps, a summed loss
conventions = Conventions(norm_eps=EPS, reduction="sum")


def jax_loss(params, batch, conventions=conventions):
    lp = categorical_log_prob(jax_model.apply(params, batch["obs"]), batch["actions"],
                              conventions)
    return reinforce_loss(lp, batch["rewards"], GAMMA, conventions)


# ---------------------------------------------------------------- the check's settings
def batches(rng):
    """One recorded episode: CartPole-shaped observations, actions, reward 1 per step."""
    return {"obs": rng.normal(scale=[1.0, 1.0, 0.1, 1.0], size=(EPISODE, 4)),
            "actions": rng.integers(0, 2, size=EPISODE),
            "rewards": np.ones(EPISODE)}


optimizer, lr = "adam", 1e-2
steps = 50
