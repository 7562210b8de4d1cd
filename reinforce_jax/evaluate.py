"""Evaluate kept policies on fresh episodes: every seed x ``episodes`` whole episodes in
one jitted program (vmapped over seeds; the episodes of a seed are the rollout's envs).

Episodes are played by the training's collect step (``Trainer.play``, in episodic
mode), from reset up to the env's own time limit, so an evaluation return is measured
exactly as a training return is. Greedy acting feeds the rollout a point mass on the
most likely action (``policy.greedy_dist``).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from reinforce_jax.envs import make_env
from reinforce_jax.policy import PolicySet
from reinforce_jax.rollout import RUN_AXIS, reset_envs
from reinforce_jax.stats import summarize


@dataclass
class Evaluation:
    """Returns and lengths ``[seeds, episodes]`` of one evaluation."""

    seeds: list[int]
    returns: np.ndarray
    lengths: np.ndarray
    diverged: np.ndarray  # bool [seeds]: diverged in training; excluded from the aggregate
    greedy: bool
    key_seed: int

    def per_seed(self) -> list[dict]:
        """Per seed: mean return over its episodes with a 95% bootstrap CI."""
        rows = []
        for i, seed in enumerate(self.seeds):
            stats = summarize(self.returns[i])
            rows.append({"seed": seed, "mean_return": stats.get("mean"),
                         "ci95": [stats.get("ci_low"), stats.get("ci_high")],
                         "mean_length": float(self.lengths[i].mean()),
                         "diverged_in_training": bool(self.diverged[i]),
                         "returns": self.returns[i], "lengths": self.lengths[i]})
        return rows

    def aggregate(self) -> dict:
        """Over the seeds that did not diverge: mean and IQM of their mean returns, and a
        95% bootstrap CI of the mean (seeds are the unit, as in training summaries)."""
        means = np.where(self.diverged, np.nan, self.returns.mean(axis=1))
        stats = summarize(means)
        return {"mean": stats.get("mean"), "iqm": stats.get("iqm"),
                "ci95": [stats.get("ci_low"), stats.get("ci_high")],
                "seeds_included": stats["n"], "seeds_excluded": stats["excluded"]}

    def to_dict(self) -> dict:
        """What ``eval.json`` holds (besides the run's own fields)."""
        return {"greedy": self.greedy, "episodes": int(self.returns.shape[1]),
                "seed": self.key_seed, "aggregate": self.aggregate(),
                "per_seed": self.per_seed()}

    def report_lines(self, env: str) -> list[str]:
        """The table ``reinforce-jax eval`` prints."""
        mode = "greedy" if self.greedy else "sampled"
        lines = [f"return per seed over {self.returns.shape[1]} fresh episodes of {env} "
                 f"({mode} actions), with a 95% bootstrap CI over episodes:",
                 f"  {'seed':>6}  {'mean_return':>11}  {'95% CI':^20}  {'mean_length':>11}"]
        for row in self.per_seed():
            low, high = row["ci95"]
            note = "  diverged in training, excluded" if row["diverged_in_training"] else ""
            lines.append(f"  {row['seed']:>6}  {_num(row['mean_return']):>11}  "
                         f"[{_num(low):>8}, {_num(high):>8}]  {row['mean_length']:>11.1f}"
                         + note)
        agg = self.aggregate()
        if agg["mean"] is not None:
            low, high = agg["ci95"]
            excluded = agg["seeds_excluded"]
            lines.append(f"  mean {agg['mean']:.2f}   IQM {agg['iqm']:.2f}   95% bootstrap CI "
                         f"over seeds [{low:.2f}, {high:.2f}]   over {agg['seeds_included']} "
                         "seeds" + (f" ({excluded} diverged, excluded)" if excluded else ""))
        return lines


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def evaluate(policies: PolicySet, episodes: int = 20, greedy: bool = False,
             seed: int = 0) -> Evaluation:
    """Play ``episodes`` fresh episodes with every seed's policy; ``seed`` picks the
    episodes' randomness (reset states, sampled actions)."""
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r}; allowed: an integer >= 1")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed={seed!r}; allowed: an integer >= 0")
    env, env_params, spec = policies.env, policies.env_params, policies.spec

    def one_seed(params, key):
        key_reset, key_play = jax.random.split(key)
        start = reset_envs(key_reset, env, env_params, episodes)
        start = start._replace(memory=policies.initial_memory((episodes,)))
        _, traj = policies.trainer.play(key_play, policies.rollout_fn(params, greedy), start,
                                        whole_episodes=True)
        return traj.reward.sum(axis=0), traj.valid.sum(axis=0)

    keys = jax.random.split(jax.random.key(seed), len(policies.seeds))
    returns, lengths = jax.device_get(jax.jit(jax.vmap(one_seed, axis_name=RUN_AXIS))(policies.params, keys))
    return Evaluation(list(policies.seeds), np.asarray(returns, np.float64),
                      np.asarray(lengths, np.int64), policies.diverged_at >= 0, greedy, seed)


def random_returns(env_name: str, episodes: int = 1024, seed: int = 0) -> np.ndarray:
    """Undiscounted returns of ``episodes`` episodes of uniformly random actions
    (``action_space.sample``), each up to the env's own time limit: the floor that
    normalized scores start from."""
    env, params, spec = make_env(env_name)
    space = env.action_space(params)

    def episode(key):
        key_reset, key_play = jax.random.split(key)
        _, state = env.reset(key_reset, params)

        def step(carry, key):
            state, alive, ret = carry
            key_act, key_step = jax.random.split(key)
            _, state, reward, terminated, truncated, _ = env.step(
                key_step, state, space.sample(key_act), params)
            ret = ret + jnp.where(alive, reward.astype(jnp.float32), 0.0)
            return (state, alive & ~(terminated | truncated), ret), None

        keys = jax.random.split(key_play, spec.max_steps)
        (_, _, ret), _ = jax.lax.scan(step, (state, jnp.bool_(True), jnp.float32(0.0)), keys)
        return ret

    keys = jax.random.split(jax.random.key(seed), episodes)
    return np.asarray(jax.jit(jax.vmap(episode))(keys), np.float64)
