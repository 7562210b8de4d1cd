"""Whole-run parity: our ``Trainer`` and a plain PyTorch training loop, fed the same
episodes, end with the same parameters.

    python -m parity.whole_run [--updates 100] [--seed 0]

Our ``Trainer`` trains in float64. Every update's episodes (observations, actions,
rewards, episode ends) are recorded from our env as our policy plays them, and replayed
into a torch loop written the way the reference systems' scripts are written: reward-to-go
per episode, normalized over the batch with torch's unbiased std, ``-(log_prob *
G).mean()``, ``clip_grad_norm_``, one Adam step per update, and the learning rate
annealed linearly through ``param_groups``. Both start from the same weights (ours,
copied into torch); after every update the two sets of parameters are compared.

A categorical policy on CartPole-v1 and a Gaussian policy (state-dependent, clamped
log-std) on Pendulum-v1.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import jax
import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Normal

from reinforce_jax import TrainConfig
from reinforce_jax.convert import flax_to_torch, torch_to_flax
from reinforce_jax.train import Trainer

ATOL = 1e-9  # float64, the suite's tolerance for parameter trajectories
HIDDEN = (16, 16)
CONFIGS = {
    "categorical": TrainConfig(env="CartPole-v1", num_envs=8, hidden_sizes=HIDDEN),
    "gaussian": TrainConfig(env="Pendulum-v1", num_envs=8, hidden_sizes=HIDDEN,
                            learning_rate=1e-2),
}


class TorchPolicy(nn.Module):
    """Our ``DiscretePolicy`` / ``GaussianPolicy`` (2 tanh layers; a logits head, or a
    mean head and a log-std head clamped to [-20, 2]) as a torch module."""

    def __init__(self, obs_dim: int, action_dim: int, discrete: bool):
        super().__init__()
        self.discrete = discrete
        self.net = nn.Sequential(nn.Linear(obs_dim, HIDDEN[0]), nn.Tanh(),
                                 nn.Linear(HIDDEN[0], HIDDEN[1]), nn.Tanh())
        self.head = nn.Linear(HIDDEN[1], action_dim)
        self.log_std = None if discrete else nn.Linear(HIDDEN[1], action_dim)

    def mapping(self) -> dict[str, str]:
        heads = {"head": "logits"} if self.discrete else {"head": "mean", "log_std": "log_std"}
        return {"net.0": "hidden_0", "net.2": "hidden_1", **heads}

    def forward(self, obs):
        f = self.net(obs)
        if self.discrete:
            return Categorical(logits=self.head(f))
        return Normal(self.head(f), self.log_std(f).clamp(-20.0, 2.0).exp())


def torch_update(model, opt, episodes: dict, config: TrainConfig, update: int) -> None:
    """One update of the torch loop on one batch of recorded episodes [T, N]."""
    obs, action = episodes["obs"], episodes["action"]
    reward, done, valid = episodes["reward"], episodes["done"], episodes["valid"]
    returns = torch.zeros_like(reward)
    running = torch.zeros_like(reward[0])
    for t in reversed(range(reward.shape[0])):  # reward-to-go, restarting at episode ends
        running = reward[t] + config.gamma * running * (1.0 - done[t])
        returns[t] = running
    g = returns[valid]
    g = (g - g.mean()) / (g.std() + 1e-8)
    dist = model(obs[valid])
    log_prob = dist.log_prob(action[valid])
    if not model.discrete:
        log_prob = log_prob.sum(-1)
    loss = -(log_prob * g).mean()
    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
    for group in opt.param_groups:
        group["lr"] = config.learning_rate * (1.0 - update / config.num_updates)
    opt.step()


@dataclass
class WholeRun:
    policy: str
    updates: int
    max_abs: float  # over every update's parameters
    first_divergence: int | None  # the first update after which they differ by > ATOL
    moved: float  # max |final - initial| parameter: how far training took them

    @property
    def ok(self) -> bool:
        return self.first_divergence is None

    def line(self) -> str:
        verdict = "PASS" if self.ok else f"FAIL from update {self.first_divergence}"
        return (f"{self.policy:<12} {self.updates:>4} updates  max |ours - torch| "
                f"{self.max_abs:.2e} (atol {ATOL:g})  parameters moved up to "
                f"{self.moved:.3f}  {verdict}")


def _flat(params) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(x, np.float64))
                           for x in jax.tree.leaves(params)])


def whole_run(policy: str, updates: int = 100, seed: int = 0) -> WholeRun:
    """Train ``updates`` updates with our ``Trainer`` and with the torch loop on the same
    episodes, in float64; compare the parameters after every update."""
    if policy not in CONFIGS:
        raise ValueError(f"policy={policy!r}; allowed: {', '.join(CONFIGS)}")
    config = CONFIGS[policy].replace(num_updates=updates)
    with jax.enable_x64(True):
        trainer = Trainer(config)
        hp = config.hyperparams
        state = trainer.init(jax.random.key(seed))
        params = jax.tree.map(lambda x: x.astype(np.float64), state.params)
        state = state._replace(params=params, opt_state=trainer.tx.init(params))
        # the update's own two steps, so the batch torch replays is the one we learned from
        collect, learn = jax.jit(trainer.collect), jax.jit(trainer.learn_from)

        spec = trainer.spec
        model = TorchPolicy(spec.obs_shape[0], spec.action_dim, spec.discrete).double()
        model.load_state_dict({k: torch.from_numpy(v) for k, v in
                               flax_to_torch(state.params, model.mapping(), np.float64).items()})
        opt = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        start, worst, first = _flat(state.params), 0.0, None
        for k in range(updates):
            batch = collect(state, hp)
            traj = jax.device_get(batch.traj)
            episodes = {
                "obs": torch.from_numpy(np.array(traj.obs, np.float64)),
                "action": torch.from_numpy(np.array(traj.action, np.float64 if not
                                                      spec.discrete else np.int64)),
                "reward": torch.from_numpy(np.array(traj.reward, np.float64)),
                "done": torch.from_numpy(np.array(traj.terminated | traj.truncated,
                                                    np.float64)),
                "valid": torch.from_numpy(np.array(traj.valid)),
            }
            state, _ = learn(state, batch, hp)
            torch_update(model, opt, episodes, config, k)
            theirs = torch_to_flax(model.state_dict(), model.mapping(), np.float64)
            diff = float(np.max(np.abs(_flat(state.params) - _flat(theirs))))
            worst = max(worst, diff)
            if first is None and not diff <= ATOL:
                first = k + 1
        moved = float(np.max(np.abs(_flat(state.params) - start)))
    return WholeRun(policy, updates, worst, first, moved)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity.whole_run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--updates", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    runs = [whole_run(p, args.updates, args.seed) for p in CONFIGS]
    for run in runs:
        print(run.line())
    return 0 if all(r.ok for r in runs) else 5


if __name__ == "__main__":
    raise SystemExit(main())
