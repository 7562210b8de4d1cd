"""Scores across environments: returns normalized so that a random policy scores 0 and
the best known result 1, aggregated over tasks with stratified bootstrap CIs, and
exported in rliable's layout.

The references per env: ``RANDOM``, the mean return of 1024 episodes of uniformly random
actions measured here (``evaluate.random_returns``; an env without an entry is measured
when it is first asked for), and ``PUBLISHED``, the return gymnax's README gives for its
PPO / ES checkpoints. Pass ``references={env: (random, best)}`` (or ``{env: best}``,
random then measured) for envs without a published number, or to use others.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from reinforce_jax.stats import iqm, stratified_bootstrap_ci

_G = "gymnax README"
# env -> (best known return, who reached it and where it is published)
PUBLISHED: dict[str, tuple[float, str]] = {
    "CartPole-v1": (500, f"PPO, ES; {_G}"), "Pendulum-v1": (-130, f"PPO, ES; {_G}"),
    "Acrobot-v1": (-80, f"PPO, ES; {_G}"), "MountainCar-v0": (-118, f"PPO, ES; {_G}"),
    "MountainCarContinuous-v0": (92, f"PPO, ES; {_G}"),
    "Asterix-MinAtar": (15, f"PPO; {_G}"), "Breakout-MinAtar": (28, f"PPO; {_G}"),
    "Freeway-MinAtar": (58, f"PPO; {_G}"), "SpaceInvaders-MinAtar": (131, f"PPO; {_G}"),
    "Catch-bsuite": (1, f"PPO, ES; {_G}"), "DeepSea-bsuite": (0, f"PPO, ES; {_G}"),
    "MemoryChain-bsuite": (0.1, f"PPO, ES; {_G}"),
    "UmbrellaChain-bsuite": (1, f"PPO, ES; {_G}"),
    "DiscountingChain-bsuite": (1.1, f"PPO, ES; {_G}"),
    "FourRooms-misc": (1, f"PPO, ES; {_G}"), "MetaMaze-misc": (32, f"ES, LSTM; {_G}"),
    "PointRobot-misc": (10, f"ES, LSTM; {_G}"),
    "BernoulliBandit-misc": (90, f"ES, LSTM; {_G}"),
    "GaussianBandit-misc": (0, f"ES, LSTM; {_G}"),
}
# env -> the return at which the task counts as solved: gymnasium's reward_threshold for
# these envs (their registration); --until-solved uses it unless given --solved-return
SOLVED_RETURN: dict[str, float] = {
    "CartPole-v1": 475.0, "Acrobot-v1": -100.0, "MountainCar-v0": -110.0,
    "MountainCarContinuous-v0": 90.0,
}
# env -> mean return of uniformly random actions over 1024 episodes (seed 0), measured
# by benchmarks.env_table (benchmarks/results/envs/)
RANDOM: dict[str, float] = {
    'Acrobot-v1': -498.756,
    'Asterix-MinAtar': 0.536133,
    'BernoulliBandit-misc': 49.9629,
    'Breakout-MinAtar': 0.397461,
    'CartPole-v1': 22.4854,
    'Catch-bsuite': -0.595703,
    'DeepSea-bsuite': 0.00378662,
    'DiscountingChain-bsuite': 1.02031,
    'FourRooms-misc': 0.450195,
    'Freeway-MinAtar': 0.441406,
    'FrozenLake-misc': 0.0107422,
    'GaussianBandit-misc': -48.9263,
    'MemoryChain-bsuite': 0.00976562,
    'MetaMaze-misc': 7.91016,
    'MiniGrid-Empty-6x6': 0.171838,
    'MountainCar-v0': -200,
    'MountainCarContinuous-v0': -33.1849,
    'Pendulum-v1': -1200.32,
    'PointRobot-misc': 0.208008,
    'Pong-misc': 85.8818,
    'Reacher-misc': 15.946,
    'Seaquest-MinAtar': 0.115234,
    'SimpleBandit-bsuite': 0.50293,
    'SpaceInvaders-MinAtar': 4.11719,
    'Swimmer-misc': 84.6507,
    'UmbrellaChain-bsuite': -0.162109,
}


@lru_cache(maxsize=None)
def random_return(env: str) -> float:
    if env in RANDOM:
        return RANDOM[env]
    from reinforce_jax.evaluate import random_returns

    return float(random_returns(env).mean())


def reference(env: str, references: dict | None = None) -> tuple[float, float]:
    """``(random, best)`` returns of ``env``: from ``references`` if it has the env, else
    the built-in ones. A ``ValueError`` names an env with no best-known return, or one
    whose best is no better than random (nothing to normalize by)."""
    given = (references or {}).get(env)
    if given is not None and np.ndim(given) == 0:  # the best alone: random is measured
        low, high = random_return(env), float(given)
    elif given is not None:
        low, high = map(float, given)
    elif env in PUBLISHED:
        low, high = random_return(env), float(PUBLISHED[env][0])
    else:
        raise ValueError(f"env={env!r} has no published best return to normalize by; pass "
                         f"references={{{env!r}: (random, best) or best}} (known: "
                         f"{', '.join(sorted(PUBLISHED))})")
    if not high > low:
        raise ValueError(f"env={env!r}: best known {high:g} is not above random {low:g}; "
                         "normalized scores need best > random")
    return low, high


def normalize(env: str, returns, references: dict | None = None) -> np.ndarray:
    """``(returns - random) / (best - random)``: 0 is random, 1 the best known."""
    low, high = reference(env, references)
    return (np.asarray(returns, np.float64) - low) / (high - low)


def aggregate(scores: dict[str, np.ndarray]) -> dict:
    """Over tasks: ``scores`` maps env -> normalized scores of its runs [seeds] (NaN for
    a diverged run, excluded and counted). Mean and IQM of the pooled runs, each with a
    95% stratified bootstrap CI (runs resampled within each env), and per-env means."""
    per_env = {env: np.asarray(x, np.float64) for env, x in scores.items()}
    finite = {env: x[np.isfinite(x)] for env, x in per_env.items()}
    empty = [env for env, x in finite.items() if x.size == 0]
    out = {"tasks": len(per_env), "runs": int(sum(x.size for x in finite.values())),
           "excluded": int(sum(x.size for x in per_env.values())
                           - sum(x.size for x in finite.values())),
           "per_env": {env: float(x.mean()) if x.size else None for env, x in finite.items()},
           "tasks_without_runs": empty}
    samples = [x for x in finite.values() if x.size]
    if samples:
        pooled = np.concatenate(samples)
        out.update(mean=float(pooled.mean()), iqm=float(iqm(pooled)),
                   mean_ci=list(stratified_bootstrap_ci(samples, np.mean)),
                   iqm_ci=list(stratified_bootstrap_ci(samples, iqm)))
    return out


def rliable_layout(scores: dict[str, dict[str, np.ndarray]], envs: list[str]
                   ) -> dict[str, np.ndarray]:
    """``{config: [runs, tasks]}``, the layout rliable's ``get_interval_estimates`` takes:
    ``scores[config][env]`` are one config's runs on one env (tasks in ``envs`` order).
    Envs with fewer runs than the most are padded with NaN (rliable wants equal runs;
    drop or impute those before passing them on)."""
    out = {}
    for config, by_env in scores.items():
        runs = max(len(by_env.get(env, ())) for env in envs)
        table = np.full((runs, len(envs)), np.nan)
        for t, env in enumerate(envs):
            x = np.asarray(by_env.get(env, ()), np.float64)
            table[:x.size, t] = x
        out[config] = table
    return out
