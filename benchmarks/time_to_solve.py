"""``python -m benchmarks.time_to_solve [--seeds 16] [--repeats 2]``: seconds to solve
CartPole-v1, ours against the plain JAX script (``benchmarks/plain_reinforce.py``).

"Solved" is one rule for both: every seed's mean episode return over its last 10 updates
has reached 475 (gymnasium's threshold), checked every 5 updates. Each run is a fresh
process timed from its start to its exit, so the wall time includes Python's start, the
imports and compilation, as a user's command does. Ours runs the documented command
(``reinforce-jax train --until-solved ...``); the plain script runs the same rule in a
host loop over jitted chunks of 5 updates. Afterwards each of our seeds' final policies
plays 32 fresh episodes (sampled actions) as a check that does not rest on the training
returns. Runs alternate (ours, plain, ours, plain, ...). Our rows run with the CLI's
compilation cache off (a first run, as the plain script's every run is), and the fastest
config once more with the cache warm (a config run before: XLA's compile skipped).
Results go to ``benchmarks/results/time_to_solve.json``.

Steps are counted two ways: *valid* steps are inside an episode (what learning sees);
*computed* steps are every env step computed, including the padding an episodic window
computes after an env's episode has ended.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

THRESHOLD = 475.0
WINDOW = 10  # reinforce_jax.stats.FINAL_WINDOW
CHECK_EVERY = 5  # updates between checks, as `train --until-solved` does by default
MAX_UPDATES = 150
EVAL_EPISODES = 32
RESULTS = Path(__file__).resolve().parent / "results" / "time_to_solve.json"

# name -> extra `reinforce-jax train` options (the CartPole defaults otherwise)
OURS: dict[str, list[str]] = {
    "defaults (48 envs, lr 5e-3)": [],
    # a 60-update schedule: the step size has annealed to 40% by update 35, when it is
    # usually solved, which leaves its policies more settled than a 150-update schedule's
    "32 envs, lr 1e-2, 60-update schedule": ["--num-envs", "32", "--learning-rate", "1e-2",
                                             "--num-updates", "60"],
}
FASTEST = "32 envs, lr 1e-2, 60-update schedule"
WARM = f"{FASTEST}, compile cache warm"
PLAIN_ENVS = 48  # the plain script at our default shape


def our_command(options: list[str], seeds: int, out: Path) -> list[str]:
    """The ``train --until-solved`` command; at most ``MAX_UPDATES`` unless ``options``
    set ``--num-updates``."""
    cap = [] if "--num-updates" in options else ["--num-updates", str(MAX_UPDATES)]
    return ["reinforce-jax", "train", "--seeds", str(seeds), "--until-solved", *cap,
            "--no-progress", *options, "--out", str(out)]


def run_ours(options: list[str], seeds: int, cache: str = "off") -> dict:
    """One timed ``train --until-solved`` process and its summary, with an evaluation of
    the policies it kept. ``cache``: the compilation cache folder, or off."""
    from reinforce_jax.cli import COMPILE_CACHE_VAR
    from reinforce_jax.evaluate import evaluate
    from reinforce_jax.policy import load_policies

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = our_command(options, seeds, out)
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "reinforce_jax", *argv[1:]],
                              capture_output=True, text=True,
                              env={**os.environ, COMPILE_CACHE_VAR: cache})
        wall = time.perf_counter() - start
        if proc.returncode not in (0, 6):
            raise RuntimeError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stderr}")
        summary = json.loads((out / "summary.json").read_text())
        metrics = np.load(out / "metrics.npz")
        evaluation = evaluate(load_policies(out), EVAL_EPISODES)
    solved = summary["solved"]
    at = np.asarray(solved["solved_at_update"])
    computed = np.cumsum(metrics["computed_steps"], axis=1)
    return {
        "wall_seconds": wall, "exit_code": proc.returncode,
        "updates": summary["updates_done"], "seeds_solved": solved["seeds_solved"],
        "valid_steps_to_solve": solved["env_steps_to_solve"],
        "computed_steps_to_solve": [int(computed[i, u - 1]) if u > 0 else None
                                    for i, u in enumerate(at)],
        "compile_seconds": summary["compile_seconds"],
        "eval_mean_per_seed": evaluation.returns.mean(axis=1).tolist(),
    }


def plain_worker(num_envs: int, seeds: int) -> dict:
    """The plain script under the same stopping rule (run in its own process). The rule
    is written out here rather than taken from ``reinforce_jax.driver.SolvedStop`` so
    that this process imports nothing of ours: its wall time is the plain script's own."""
    import jax

    from benchmarks import plain_reinforce

    init, update = plain_reinforce.make_update(num_envs, "episodic")

    def chunk(state):
        return jax.lax.scan(lambda s, _: update(s), state, None, length=CHECK_EVERY)

    run = jax.jit(jax.vmap(chunk))
    state = jax.jit(jax.vmap(init))(jax.random.split(jax.random.key(0), seeds))
    history: dict[str, list[np.ndarray]] = {"episode_return": [], "valid_steps": [],
                                            "computed_steps": []}
    solved_at = np.full(seeds, -1)
    done = 0
    while done < MAX_UPDATES and (solved_at < 0).any():
        state, metrics = run(state)
        metrics = jax.device_get(metrics)
        for k in history:
            history[k].append(np.asarray(metrics[k]))
        done += CHECK_EVERY
        returns = np.concatenate(history["episode_return"], axis=1)
        if done >= WINDOW:
            means = np.lib.stride_tricks.sliding_window_view(returns, WINDOW, axis=1).mean(-1)
            reached = means >= THRESHOLD
            first = np.where(reached.any(axis=1), reached.argmax(axis=1) + WINDOW, -1)
            solved_at = np.where(solved_at >= 0, solved_at, first)
    steps = {k: np.cumsum(np.concatenate(history[k], axis=1), axis=1)
             for k in ("valid_steps", "computed_steps")}
    return {
        "updates": done, "seeds_solved": int((solved_at >= 0).sum()),
        **{f"{k}_to_solve": [int(v[i, u - 1]) if u > 0 else None for i, u in enumerate(solved_at)]
           for k, v in steps.items()},
    }


def run_plain(seeds: int) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmarks.time_to_solve", "--plain-worker",
                           "--seeds", str(seeds)], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the plain worker exited {proc.returncode}:\n{proc.stderr}")
    return {"wall_seconds": wall, **json.loads(proc.stdout.strip().splitlines()[-1])}


def _median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def row(name: str, command: str, runs: list[dict]) -> str:
    walls = [r["wall_seconds"] for r in runs]
    last = runs[-1]
    evals = last.get("eval_mean_per_seed")
    passed = "—" if evals is None else f"{sum(v >= THRESHOLD for v in evals)}/{len(evals)}"
    seeds = len(last["valid_steps_to_solve"])
    return (f"| {name} | {statistics.median(walls):.1f} [{min(walls):.1f}, {max(walls):.1f}] | "
            f"{last['seeds_solved']}/{seeds} | {last['updates']} | "
            f"{_median(last['valid_steps_to_solve']) or float('nan'):,.0f} | "
            f"{_median(last['computed_steps_to_solve']) or float('nan'):,.0f} | {passed} | "
            f"`{command}` |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_solve",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None,
                        help="names of OURS to run (default all)")
    parser.add_argument("--no-plain", action="store_true", help="skip the plain script")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--plain-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain_worker:
        print(json.dumps(plain_worker(PLAIN_ENVS, args.seeds)))
        return 0
    from benchmarks.throughput import machine

    names = list(OURS) if args.only is None else args.only
    unknown = [n for n in names if n not in OURS]
    if unknown:
        parser.error(f"--only {unknown}; allowed: {list(OURS)}")
    runs: dict[str, list[dict]] = {n: [] for n in names}
    cache_dir = tempfile.TemporaryDirectory()
    if FASTEST in names:
        runs[WARM] = []
        run_ours(OURS[FASTEST], args.seeds, cache_dir.name)  # fills the cache, untimed
    if not args.no_plain:
        runs["plain"] = []
    for repeat in range(args.repeats):
        for name in runs:
            if name == "plain":
                result = run_plain(args.seeds)
            elif name == WARM:
                result = run_ours(OURS[FASTEST], args.seeds, cache_dir.name)
            else:
                result = run_ours(OURS[name], args.seeds)
            runs[name].append(result)
            print(f"[{repeat + 1}/{args.repeats}] {name}: {result['wall_seconds']:.1f} s, "
                  f"{result['seeds_solved']}/{args.seeds} solved in {result['updates']} updates",
                  file=sys.stderr, flush=True)
    plain_command = (f"python -m benchmarks.time_to_solve --plain-worker --seeds {args.seeds} "
                     f"({PLAIN_ENVS} envs, episodic)")
    lines = ["| config | wall s, median [range] | seeds solved | updates | valid env steps "
             "to solve, median seed | computed steps | seeds >= 475 in evaluation | command |",
             "|---|---|---|---|---|---|---|---|"]
    for name, results in runs.items():
        command = plain_command if name == "plain" else \
            shlex.join(our_command(OURS[FASTEST if name == WARM else name], args.seeds,
                                   Path("runs/solve")))
        lines.append(row(name, command, results))
    cache_dir.cleanup()
    print("\n".join(lines))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "rule": f"every seed's mean return over its last {WINDOW} updates >= {THRESHOLD}, "
                f"checked every {CHECK_EVERY} updates, at most {MAX_UPDATES}",
        "seeds": args.seeds, "runs": runs, "table": lines, "machine": machine(),
        "date": datetime.date.today().isoformat()}, indent=1))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
