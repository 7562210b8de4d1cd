"""PyTorch versions of the five reference systems' policies and losses.

The reference systems are the FourCurves bandit, the gamma^t update, the LineWalk agents,
the DigitMatch bandit and the per-step CartPole agent (README, "Training from the command
line"). Each function computes its loss the way the original torch code does (torch's
unbiased std, ``clip_grad_norm_``, ``Categorical`` semantics), so that a difference from
our JAX side is a real one.
Every module has a ``MAPPING`` onto our flax layer names for ``reinforce_jax.convert``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Normal


class DiscreteMLP(nn.Module):
    """The LineWalk agents' discrete policy: 2 x hidden tanh MLP -> logits."""

    MAPPING = {"net.0": "hidden_0", "net.2": "hidden_1", "net.4": "logits"}

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, n_actions))

    def forward(self, x):
        return Categorical(logits=self.net(x))


class GaussianMLP(nn.Module):
    """The LineWalk agents' Gaussian policy: tanh backbone, mean head, clamped log-std head."""

    MAPPING = {"backbone.0": "hidden_0", "backbone.2": "hidden_1", "mean_head": "mean",
               "log_std_head": "log_std"}

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 128,
                 log_std_min: float = -20.0, log_std_max: float = 2.0):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(),
                                      nn.Linear(hidden, hidden), nn.Tanh())
        self.mean_head = nn.Linear(hidden, act_dim)
        self.log_std_head = nn.Linear(hidden, act_dim)
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def forward(self, x):
        f = self.backbone(x)
        log_std = self.log_std_head(f).clamp(self.log_std_min, self.log_std_max)
        return Normal(self.mean_head(f), log_std.exp())


class BaselineMLP(nn.Module):
    """The LineWalk agents' policy with baseline: shared tanh backbone, policy and value heads."""

    MAPPING = {"backbone.0": "hidden_0", "backbone.2": "hidden_1", "policy_head": "logits",
               "value_head": "value"}

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 128):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(),
                                      nn.Linear(hidden, hidden), nn.Tanh())
        self.policy_head = nn.Linear(hidden, n_actions)
        self.value_head = nn.Linear(hidden, 1)

    def forward(self, x):
        f = self.backbone(x)
        return Categorical(logits=self.policy_head(f)), self.value_head(f).squeeze(-1)


class BanditMLP(nn.Module):
    """The FourCurves bandit: 1 -> 128 sigmoid -> 8 outputs, 4 means and 4 log-sigmas."""

    MAPPING = {"net.0": "hidden_0",
               "net.2": [("mean", slice(0, 4)), ("log_std", slice(4, 8))]}

    def __init__(self, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(1, hidden), nn.Sigmoid(), nn.Linear(hidden, 8))

    def forward(self, x):
        out = self.net(x)
        return Normal(out[:, :4], torch.exp(out[:, 4:]))


class ProbPolicy(nn.Module):
    """The DigitMatch bandit: 1 -> hidden ReLU -> softmax probabilities over the actions."""

    MAPPING = {"linear1": "hidden_0", "linear2": "logits"}

    def __init__(self, num_inputs: int, n_actions: int, hidden: int = 128):
        super().__init__()
        self.linear1 = nn.Linear(num_inputs, hidden)
        self.linear2 = nn.Linear(hidden, n_actions)

    def forward(self, x):
        return torch.softmax(self.linear2(torch.relu(self.linear1(x))), dim=-1)


class LinearSoftmax(nn.Module):
    """The per-step CartPole agent: a linear layer and a softmax (no hidden layer)."""

    MAPPING = {"output": "logits"}

    def __init__(self, obs_dim: int = 4, n_actions: int = 2):
        super().__init__()
        self.output = nn.Linear(obs_dim, n_actions)

    def forward(self, x):
        return torch.softmax(self.output(x), dim=-1)


class LinearPolicyAndValue(nn.Module):
    """Sutton & Barto's REINFORCE with baseline: linear softmax preferences (θ) and a
    linear state value (w), two parameter sets for two optimizers."""

    MAPPING = {"policy": "logits", "value": "value"}

    def __init__(self, obs_dim: int = 4, n_actions: int = 2):
        super().__init__()
        self.policy = nn.Linear(obs_dim, n_actions)
        self.value = nn.Linear(obs_dim, 1)


class SeparateValueMLP(nn.Module):
    """A policy MLP and a value MLP of its own (2 x hidden tanh each), the usual torch
    setup for two optimizers."""

    MAPPING = {"policy.0": "hidden_0", "policy.2": "hidden_1", "policy.4": "logits",
               "value.0": "value_hidden_0", "value.2": "value_hidden_1", "value.4": "value"}

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64):
        super().__init__()

        def mlp(out):
            return nn.Sequential(nn.Linear(obs_dim, hidden), nn.Tanh(),
                                 nn.Linear(hidden, hidden), nn.Tanh(), nn.Linear(hidden, out))

        self.policy, self.value = mlp(n_actions), mlp(1)

    def forward(self, x):
        return Categorical(logits=self.policy(x)), self.value(x).squeeze(-1)


class GRUPolicy(nn.Module):
    """A recurrent categorical policy: a one-layer ``nn.GRU`` over the episode, then a
    linear head on its outputs."""

    MAPPING = {"gru": "gru", "head": "logits"}

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 16):
        super().__init__()
        self.gru = nn.GRU(obs_dim, hidden)
        self.head = nn.Linear(hidden, n_actions)

    def forward(self, x):  # one episode [T, obs_dim], from a zero hidden state
        out, _ = self.gru(x[:, None])
        return Categorical(logits=self.head(out[:, 0]))


def discounted(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t by the backwards loop the reference systems use."""
    G, out = 0.0, []
    for r in reversed(rewards.tolist()):
        G = r + gamma * G
        out.insert(0, G)
    return torch.tensor(out, dtype=rewards.dtype)


def normalized(G: torch.Tensor) -> torch.Tensor:
    """The LineWalk agents: (G - mean) / (std + 1e-8), torch's unbiased std."""
    return (G - G.mean()) / (G.std() + 1e-8)


def linewalk_loss(log_probs, rewards, gamma, reduction="mean"):
    """``reinforce_update``: normalized discounted returns, ``-(log_prob * G).mean()``."""
    G = normalized(discounted(rewards, gamma))
    terms = -(log_probs * G)
    return terms.mean() if reduction == "mean" else terms.sum()


def linewalk_baseline_loss(log_probs, values, rewards, gamma, beta=0.5):
    """``reinforce_with_baseline``: advantage G - V.detach(), policy + beta * MSE(V, G)."""
    G = normalized(discounted(rewards, gamma))
    advantages = G - values.detach()
    return -(log_probs * advantages).mean() + beta * nn.functional.mse_loss(values, G)


def fourcurves_loss(dist: Normal, samples, y):
    """Per-dimension reward -(sample - y)^2; loss mean over batch and dims of -log_prob*r."""
    reward = -nn.functional.mse_loss(samples, y, reduction="none")
    return (-dist.log_prob(samples) * reward).mean()


def gamma_t_loss(log_probs, rewards, gamma):
    """Sutton & Barto 13.3 as a loss: -sum_t gamma^t G_t log pi(A_t|S_t)."""
    G = discounted(rewards, gamma)
    powers = gamma ** torch.arange(len(rewards), dtype=rewards.dtype)
    return -(powers * G * log_probs).sum()


def digitmatch_loss(probs, actions, rewards, ent_coef=1e-4, min_prob=1e-6):
    """The DigitMatch bandit's loss with the fixes from its thread: clamp probabilities at 1e-6
    before the log, R_i = r_i, ``sum_i(-log_prob_i * R_i - ent_coef * H_i) / n``."""
    picked = probs[torch.arange(len(actions)), actions]
    log_prob = picked.clamp(min=min_prob).log()
    entropy = -(probs * probs.clamp(min=min_prob).log()).sum(-1)
    return (-(log_prob * rewards) - ent_coef * entropy).sum() / len(rewards)


def per_step_episode(model: LinearSoftmax, opt, states, actions, rewards, gamma):
    """The per-step CartPole agent: for each t, ``-Categorical(probs).log_prob(a_t) * G_t``,
    then one Adam step."""
    for t in range(len(states)):
        G = sum(r * gamma**i for i, r in enumerate(rewards[t:].tolist()))
        opt.zero_grad()
        m = Categorical(model(states[t]))
        (-m.log_prob(actions[t]) * G).backward()
        opt.step()


def per_step_with_baseline_episode(model: LinearPolicyAndValue, opt_theta, opt_w, states,
                                   actions, rewards, gamma):
    """The book's "REINFORCE with Baseline (episodic)" box, one time step at a time:
    G = sum_k gamma^(k-t) r_k; delta = G - v(S_t, w); w += alpha_w delta grad v(S_t, w);
    theta += alpha_theta gamma^t delta grad ln pi(A_t | S_t, theta). Each update is a
    ``backward()`` and a ``step()`` of that parameter set's own optimizer."""
    returns = discounted(rewards, gamma)
    for t in range(len(states)):
        v = model.value(states[t]).squeeze(-1)
        delta = (returns[t] - v).detach()
        opt_w.zero_grad()
        (-delta * v).backward()  # the gradient of 0.5 * delta^2 with respect to w
        opt_w.step()
        opt_theta.zero_grad()
        log_prob = Categorical(logits=model.policy(states[t])).log_prob(actions[t])
        (-(gamma ** t) * delta * log_prob).backward()
        opt_theta.step()


def separate_value_loss(dist, values, actions, rewards, gamma, vf_coef=0.5):
    """One batch: normalized returns, advantage G - V.detach(), policy term mean, plus
    vf_coef * MSE(V, G) for the value network."""
    G = normalized(discounted(rewards, gamma))
    policy = -(dist.log_prob(actions) * (G - values.detach())).mean()
    return policy + vf_coef * nn.functional.mse_loss(values, G)
