"""Every gymnax environment x our REINFORCE: the results table in README.md.

    python -m benchmarks.env_table [ENV ...] [--seeds 16] [--readme]

Each env trains with its documented config (``CONFIGS``; all seeds in one vmapped
program) and a uniformly random policy plays ``RANDOM_EPISODES`` episodes beside it.
One JSON per env goes to ``benchmarks/results/envs/``, so envs can be run (and re-run)
one at a time; ``--readme`` rebuilds the README table from every JSON there. With no ENV
every env in ``CONFIGS`` runs.

The final return of a seed is its mean training return over the last 10 updates
(sampled actions, as PPO-style libraries report it); the table gives the mean and the
IQM over seeds, each with a 95% bootstrap CI. Wall time includes compilation.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shlex
import time
from pathlib import Path

import numpy as np

from reinforce_jax import TrainConfig
from reinforce_jax.driver import final_returns, run_training
from reinforce_jax.evaluate import random_returns
from reinforce_jax.io import write_json
from reinforce_jax.scores import PUBLISHED
from reinforce_jax.stats import bootstrap_ci, iqm

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "envs"
README = ROOT / "README.md"
MARKERS = ("<!-- env-table:start -->", "<!-- env-table:end -->")
RANDOM_EPISODES = 1024

# MinAtar-style image envs: fixed windows of 64 steps with a learned baseline to bootstrap
# the tails (their episodes run to thousands of steps), MinAtar's 3x3x16 conv and 128
# units; the CI check's Breakout config, 100 updates (205k env steps per seed)
_IMAGES = dict(rollout="fixed", horizon=64, num_envs=32, num_updates=100, hidden_sizes=(128,),
               baseline="separate", learning_rate=3e-3, ent_coef=0.01)
# the meta-learning and memory tasks: a GRU over the episode
_MEMORY = dict(gru_size=32, hidden_sizes=(32,), num_envs=64, learning_rate=1e-2)

# env -> (config overrides of TrainConfig, why this config / what to expect)
CONFIGS: dict[str, tuple[dict, str]] = {
    "CartPole-v1": ({}, "the defaults"),
    "Acrobot-v1": (dict(num_envs=64, num_updates=100, return_mode="episode", ent_coef=0.01),
                   "the README's Acrobot config"),
    "MountainCar-v0": (dict(num_updates=100),
                       "-1 per step until the goal, which random actions never reach in 200 "
                       "steps: no return ever differs, so there is no gradient to follow"),
    "Pendulum-v1": (dict(num_envs=64, num_updates=300, baseline="separate",
                         learning_rate=3e-3), "a learned baseline; 200-step episodes"),
    "MountainCarContinuous-v0": (dict(num_updates=100),
                                 "the goal pays +100 but the action cost pays at once: "
                                 "policies learn to stand still (return near 0)"),
    "Asterix-MinAtar": (_IMAGES, "MinAtar's conv; a short budget (205k env steps per seed, "
                        "where MinAtar's own baselines train for 5M frames). Does not "
                        "learn here: it stays at random, as did 0.5M steps per seed at "
                        "lr 1e-3 (0.51 vs 0.54)"),
    "Breakout-MinAtar": (_IMAGES, "the Asterix config (205k env steps per seed)"),
    "Freeway-MinAtar": (_IMAGES, "the Asterix config (205k env steps per seed)"),
    "Seaquest-MinAtar": (_IMAGES, "the Asterix config (205k env steps per seed)"),
    "SpaceInvaders-MinAtar": (_IMAGES, "the Asterix config (205k env steps per seed)"),
    "Catch-bsuite": (dict(hidden_sizes=(32,), num_envs=32, learning_rate=1e-2),
                     "the CI check's config"),
    "DeepSea-bsuite": (dict(num_updates=100),
                       "needs deep exploration: the one rewarding path is as unlikely as "
                       "2^-size under a near-uniform policy, and each step right costs a "
                       "little, so REINFORCE learns to go left (return 0)"),
    "MemoryChain-bsuite": (dict(_MEMORY, horizon=8),
                           "a GRU: the bit shown at the first step is asked for at the last"),
    "UmbrellaChain-bsuite": (dict(num_updates=100), "the defaults, 100 updates"),
    "DiscountingChain-bsuite": (dict(num_updates=100), "the defaults, 100 updates"),
    "SimpleBandit-bsuite": (dict(num_updates=100),
                            "nothing to learn here: gymnax re-draws which arm pays what at "
                            "every reset, episodes are one step and the observation is "
                            "constant, so every policy expects 0.5 (bsuite's bandit keeps "
                            "its arms for the whole run)"),
    "FourRooms-misc": (dict(num_updates=150), "the defaults"),
    "MetaMaze-misc": (dict(_MEMORY, gru_size=64), "a GRU: the goal must be remembered "
                      "across resets inside an episode. Does not learn here: it ends "
                      "below random, and gymnax's 32 took an LSTM and 9.5e9 ES steps"),
    "PointRobot-misc": (dict(_MEMORY), "a GRU: the goal is found by search, then revisited"),
    "BernoulliBandit-misc": (dict(_MEMORY), "a GRU: a meta-learning bandit (the best arm "
                             "changes per episode)"),
    "GaussianBandit-misc": (dict(_MEMORY), "a GRU: as BernoulliBandit"),
    "Reacher-misc": (dict(num_updates=100, baseline="separate"),
                     "a learned baseline; barely above random in this budget"),
    "Swimmer-misc": (dict(num_updates=100, baseline="separate"), "a learned baseline"),
    "FrozenLake-misc": (dict(num_updates=150), "one-hot observations"),
    "Pong-misc": (dict(_IMAGES, num_envs=8, horizon=32),
                  "the MinAtar config at 8 envs x 32 steps: its 30x40x3 images at 32 x 64 "
                  "filled 20 of this machine's 24 GB (this one peaks near 4.3 GB); 25.6k "
                  "env steps per seed, about 26 of its 1000-step episodes"),
    # XLand-MiniGrid through reinforce_jax.suites (the xminigrid extra)
    "MiniGrid-Empty-6x6": (dict(num_updates=60), "XLand-MiniGrid: the conv torso on the "
                           "agent's 7x7 view; the goal pays 1 - 0.9 steps/144"),
}
NOT_RUN = {
    "MNISTBandit-bsuite": "needs the MNIST files, which gymnax downloads (offline here)",
}


def command(env: str, overrides: dict, seeds: int) -> str:
    """The ``reinforce-jax train`` command that runs the same config."""
    parts = ["reinforce-jax", "train", "--env", env, "--seeds", str(seeds)]
    for field, value in overrides.items():
        flag = "--" + field.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + field.replace("_", "-"))
        elif isinstance(value, tuple):
            parts += [flag, *map(str, value)]
        else:
            parts += [flag, str(value)]
    return shlex.join(parts)


def stats(x: np.ndarray) -> dict:
    """Mean and IQM with 95% bootstrap CIs over the finite values."""
    x = np.asarray(x, np.float64)
    finite = x[np.isfinite(x)]
    out = {"n": int(finite.size), "excluded": int(x.size - finite.size)}
    if finite.size:
        out.update(mean=float(finite.mean()), mean_ci95=list(bootstrap_ci(finite)),
                   iqm=float(iqm(finite)), iqm_ci95=list(bootstrap_ci(finite, iqm)))
    return out


def run_env(env: str, seeds: int) -> dict:
    overrides, why = CONFIGS[env]
    config = TrainConfig(env=env, **overrides)
    start = time.perf_counter()
    result = run_training(config, num_seeds=seeds, progress=False)
    wall = time.perf_counter() - start
    final = final_returns(result)
    start = time.perf_counter()
    rand = random_returns(env)
    from benchmarks.throughput import machine

    return {
        "env": env, "command": command(env, overrides, seeds), "why": why, "seeds": seeds,
        "final_return": stats(final), "per_seed": [None if np.isnan(v) else float(v)
                                                   for v in final],
        "diverged_seeds": [s for s, d in zip(result.seeds, result.diverged_at) if d >= 0],
        "random_return": stats(rand) | {"episodes": int(rand.size)},
        "random_seconds": time.perf_counter() - start,
        "wall_seconds": wall, "compile_seconds": result.compile_seconds,
        "env_steps_per_seed": result.env_steps // seeds,
        "updates": int(result.config.num_updates),
        "machine": machine(), "date": datetime.date.today().isoformat(),
    }


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def table() -> str:
    """The README table from every JSON in ``RESULTS`` (CONFIGS' order)."""
    rows = ["| env | final return: mean [95% CI] | IQM [95% CI] | random policy | "
            "wall s (with compile) | env steps per seed | published | config, and why |",
            "|---|---|---|---|---|---|---|---|"]
    for env in [*CONFIGS, *NOT_RUN]:
        path = RESULTS / f"{env}.json"
        if env in NOT_RUN:
            rows.append(f"| {env} | not run: {NOT_RUN[env]} | | | | | | |")
            continue
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        f, rnd = r["final_return"], r["random_return"]
        if f["n"] == 0:
            rows.append(f"| {env} | every seed diverged | | {_fmt(rnd['mean'])} | "
                        f"{r['wall_seconds']:.0f} | | | `{r['command']}` |")
            continue
        pub = PUBLISHED.get(env)
        rows.append(
            f"| {env} | {_fmt(f['mean'])} [{_fmt(f['mean_ci95'][0])}, {_fmt(f['mean_ci95'][1])}]"
            f" | {_fmt(f['iqm'])} [{_fmt(f['iqm_ci95'][0])}, {_fmt(f['iqm_ci95'][1])}]"
            f" | {_fmt(rnd['mean'])} | {r['wall_seconds']:.0f} | {r['env_steps_per_seed']:.3g}"
            f" | {f'{_fmt(pub[0])} ({pub[1]})' if pub else '—'}"
            f" | `{r['command']}`: {CONFIGS[env][1]} |")
    return "\n".join(rows)


def write_readme() -> None:
    text = README.read_text()
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    body = re.escape(start) + r".*?" + re.escape(end)
    README.write_text(re.sub(body, lambda _: f"{start}\n{table()}\n{end}", text, flags=re.S))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.env_table", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("envs", nargs="*", help="envs to run (default: all in CONFIGS)")
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--readme", action="store_true",
                        help="rebuild README.md's table from the recorded JSONs")
    parser.add_argument("--only-readme", action="store_true", help="run nothing, rebuild it")
    args = parser.parse_args(argv)
    unknown = [e for e in args.envs if e not in CONFIGS]
    if unknown:
        parser.error(f"envs {unknown} have no config; allowed: {', '.join(CONFIGS)}")
    if not args.only_readme:
        RESULTS.mkdir(parents=True, exist_ok=True)
        for env in args.envs or list(CONFIGS):
            record = run_env(env, args.seeds)
            write_json(RESULTS / f"{env}.json", record)
            f = record["final_return"]
            print(f"{env}: final {f.get('mean', float('nan')):.3f} (IQM "
                  f"{f.get('iqm', float('nan')):.3f}), random "
                  f"{record['random_return']['mean']:.3f}, {record['wall_seconds']:.0f} s",
                  flush=True)
    if args.readme or args.only_readme:
        write_readme()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
