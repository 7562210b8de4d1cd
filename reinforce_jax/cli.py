"""Command line: ``reinforce-jax train | sweep | report``.

The edge of the program: it validates input, calls the driver, prints summaries and
writes run directories (``train``: ``config.json``, ``metrics.npz``, ``summary.json``,
``curves.png``; ``sweep``: see ``reinforce_jax.sweep``). Each command ends with one line
saying how it ended, and its exit code says the same to a script (``EXIT_*`` below).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import json
import os
import re
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

import numpy as np
import tyro

from parity.command import parity_cmd
from reinforce_jax.config import TrainConfig
from reinforce_jax.driver import TrainResult, final_returns, run_training
from reinforce_jax.io import prepare_out_dir, write_json, write_npz
from reinforce_jax.plots import plot_curves
from reinforce_jax.stats import FINAL_WINDOW, summarize

# Exit codes (README, "Exit codes").
EXIT_OK = 0  # finished; diverged seeds, if any, are reported and excluded
EXIT_CRASH = 1  # an unexpected error: Python prints the traceback
EXIT_USAGE = 2  # a bad value, path or combination of options: nothing was trained
EXIT_DIVERGED = 3  # every seed (train) or every finished run (sweep, report) diverged
EXIT_UNSOLVED = 6  # train --until-solved: num_updates ran out before every seed was solved
EXIT_SIGNAL = 128  # + the signal number: 130 after Ctrl-C (SIGINT), 143 after SIGTERM;
#                    what was done is written, and --resume / re-running continues it


class Exit(NamedTuple):
    """How a command ended: its exit code and the last line it prints."""

    code: int
    line: str


def train(
    config: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes],
    seeds: int = 16,
    first_seed: int = 0,
    out: Path | None = None,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_every: float = 60.0,
    chunk_updates: int | None = None,
    progress: bool = True,
    log: str = "none",
    until_solved: bool = False,
    solved_return: float | None = None,
) -> Exit:
    """Train REINFORCE over many seeds at once and write a run directory.

    Args:
      config: the training configuration.
      seeds: number of independent seeds, trained together in one vmapped program.
      first_seed: seeds are first_seed, first_seed+1, ...
      out: run directory; default runs/<env>-<time>. Must be new or empty.
      overwrite: replace a non-empty --out.
      resume: continue an interrupted run in --out from its checkpoint (same settings).
      checkpoint_every: seconds between checkpoints of the training state (out/checkpoint.npz).
      chunk_updates: updates per jitted call (progress, NaN and solved checks happen
        between); default 10, or 5 with --until-solved.
      progress: show a progress bar (without it, one line per chunk of updates).
      log: metrics loggers, e.g. tensorboard,csv: tensorboardX event files in
        out/tensorboard (one run per seed) and/or out/metrics.csv (long format); none.
      until_solved: stop once every seed's mean episode return over its last 10 updates
        reaches --solved-return; --num-updates is then the most it trains. Exit code 6
        if that runs out first.
      solved_return: the return that counts as solved; default the env's known threshold
        (CartPole-v1 475, Acrobot-v1 -100, MountainCar-v0 -110,
        MountainCarContinuous-v0 90: gymnasium's).
    """
    from reinforce_jax.loggers import ProgressLog, make_loggers, parse_log
    from reinforce_jax.policy import FILE_NAME, save_policies

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}; allowed: an integer >= 1")
    loggers = parse_log(log)
    config = config.validate()  # with --total-env-steps: num_updates derived from it
    threshold = _solved_threshold(config.env, until_solved, solved_return)
    if chunk_updates is None:
        chunk_updates = 5 if until_solved else 10
    if config.total_env_steps is not None:
        from reinforce_jax.envs import make_env

        per_update = config.num_envs * config.rollout_length(make_env(config.env)[2])
        print(f"--total-env-steps {config.total_env_steps:,}: {config.num_updates} updates of "
              f"{per_update:,} env steps each (num_envs x rollout length, rounded up)")
    if resume and overwrite:
        raise ValueError("--resume and --overwrite together; allowed: one of them")
    if resume and out is None:
        raise ValueError("--resume needs --out: the run directory to continue")
    out = Path(out) if out is not None else Path("runs") / (
        f"{config.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    settings = {"config": config, "seeds": seeds, "first_seed": first_seed}
    if resume:
        _check_resume(out, settings)
    else:
        out = prepare_out_dir(out, overwrite)
        write_json(out / "config.json", settings)

    callbacks = make_loggers(loggers, out, out.name)
    if not progress:
        callbacks.append(ProgressLog(config.num_updates))
    try:
        result = run_training(config, seeds, first_seed, chunk_updates, progress,
                              checkpoint=out / "checkpoint.npz",
                              checkpoint_every=checkpoint_every, resume=resume,
                              callbacks=callbacks, until_solved=threshold)
    finally:
        for callback in callbacks:
            callback.close()
    summary = write_run(out, result)
    print_summary(result, summary, out)
    if result.params is not None:
        save_policies(out / FILE_NAME, config, result.seeds, result.params, result.diverged_at,
                      result.updates_done)
        print(f"kept every seed's final policy in {out / FILE_NAME} (reinforce-jax eval "
              f"{out}; reinforce_jax.load_policy)")
    if loggers:
        print(f"logged metrics to {', '.join(str(cb.where) for cb in callbacks[:len(loggers)])}")
    return train_exit(result, out)


def _solved_threshold(env: str, until_solved: bool, solved_return: float | None
                      ) -> float | None:
    """The --until-solved threshold, checked before anything is compiled."""
    from reinforce_jax.scores import SOLVED_RETURN

    if not until_solved:
        if solved_return is not None:
            raise ValueError(f"solved_return={solved_return!r} without --until-solved; "
                             "allowed: --until-solved --solved-return R")
        return None
    if solved_return is None:
        if env not in SOLVED_RETURN:
            raise ValueError(f"--until-solved on env={env!r} needs --solved-return: no solved "
                             f"return is known for it (known: {', '.join(SOLVED_RETURN)})")
        return SOLVED_RETURN[env]
    if not np.isfinite(solved_return):
        raise ValueError(f"solved_return={solved_return!r}; allowed: a finite number")
    return float(solved_return)


def train_exit(result: TrainResult, out: Path) -> Exit:
    n, done, total = len(result.seeds), result.updates_done, result.config.num_updates
    diverged = int((result.diverged_at >= 0).sum())
    if result.interrupted:
        return Exit(EXIT_SIGNAL + _received_signal(), f"interrupted after {done} of {total} "
                    f"updates; the partial results are in {out} (continue with --resume)")
    if diverged == n:
        return Exit(EXIT_DIVERGED, f"every seed diverged ({n} of {n}; see the messages above);"
                    f" results in {out}")
    note = f", {diverged} diverged and excluded" if diverged else ""
    if result.solved_at is not None:
        solved = int((result.solved_at >= 0).sum())
        line = (f"{solved} of {n} seeds solved (mean return over their last {FINAL_WINDOW} "
                f"updates >= {result.solved_return:g}) in {done} updates, "
                f"{result.wall_seconds:.1f} s with compilation{note}; results in {out}")
        return Exit(EXIT_OK, "done: " + line) if solved == n - diverged else \
            Exit(EXIT_UNSOLVED, f"not solved: {line}")
    return Exit(EXIT_OK, f"done: {n - diverged} of {n} seeds trained {done} updates{note}; "
                f"results in {out}")


def _check_resume(out: Path, settings: dict) -> None:
    import json

    from reinforce_jax.io import jsonable

    saved_path, ckpt = out / "config.json", out / "checkpoint.npz"
    if not saved_path.exists() or not ckpt.exists():
        raise ValueError(f"--out {str(out)!r} has no config.json and checkpoint.npz to resume")
    saved, current = json.loads(saved_path.read_text()), jsonable(settings)
    if saved != current:
        fields = sorted(set(saved.get("config", {})) | set(current["config"]))
        diff = [k for k in fields if saved.get("config", {}).get(k) != current["config"].get(k)]
        diff += [k for k in ("seeds", "first_seed") if saved.get(k) != current[k]]
        raise ValueError(f"--resume with settings that differ from {saved_path} in: "
                         f"{', '.join(diff)}; allowed: the same settings as the saved run")


def write_run(out: Path, result: TrainResult) -> dict:
    """Write metrics.npz, summary.json and curves.png for ``result``; return the summary."""
    final = final_returns(result, FINAL_WINDOW)
    stats = summarize(final)
    summary = {
        "env": result.config.env,
        "seeds": result.seeds,
        "final_return": final,
        "final_return_mean": stats.get("mean"),
        "final_return_iqm": stats.get("iqm"),
        "final_return_ci95": [stats.get("ci_low"), stats.get("ci_high")],
        "final_window_updates": FINAL_WINDOW,
        "seeds_included": stats["n"],
        "diverged_seeds": [s for s, d in zip(result.seeds, result.diverged_at) if d >= 0],
        "updates_done": result.updates_done,
        "interrupted": result.interrupted,
        "env_steps": result.env_steps,
        "compile_seconds": result.compile_seconds,
        "run_seconds": result.run_seconds,
        "env_steps_per_second": result.steps_per_second,
        "wall_seconds": result.wall_seconds,
        "messages": result.messages,
    }
    if result.solved_at is not None:
        steps = np.cumsum(result.metrics["env_steps"], axis=1)
        summary["solved"] = {
            "solved_return": result.solved_return,
            "window_updates": FINAL_WINDOW,
            "seeds_solved": int((result.solved_at >= 0).sum()),
            "solved_at_update": result.solved_at.tolist(),
            "env_steps_to_solve": [int(steps[i, u - 1]) if u > 0 else None
                                   for i, u in enumerate(result.solved_at)],
        }
    write_npz(out / "metrics.npz", {**result.metrics, "seeds": np.asarray(result.seeds),
                                    "diverged_at": result.diverged_at})
    write_json(out / "summary.json", summary)
    if result.updates_done > 0:
        plot_curves(result.metrics["episode_return"], out / "curves.png",
                    f"REINFORCE on {result.config.env} ({len(result.seeds)} seeds)",
                    diverged=result.diverged_at >= 0, env_steps=result.metrics["env_steps"])
    return summary


def print_summary(result: TrainResult, summary: dict, out: Path) -> None:
    print(f"\nfinal return per seed (mean episode return over the last {FINAL_WINDOW} updates):")
    print(f"  {'seed':>6}  {'final_return':>12}")
    for seed, value, div in zip(result.seeds, summary["final_return"], result.diverged_at):
        note = f"  diverged at update {div}" if div >= 0 else ""
        print(f"  {seed:>6}  {value:>12.2f}{note}")
    excluded = len(summary["diverged_seeds"])
    if summary["final_return_mean"] is not None:
        low, high = summary["final_return_ci95"]
        print(f"  mean {summary['final_return_mean']:.2f}   IQM {summary['final_return_iqm']:.2f}"
              f"   95% bootstrap CI [{low:.2f}, {high:.2f}]   over {summary['seeds_included']}"
              f" seeds" + (f" ({excluded} diverged, excluded)" if excluded else ""))
    if result.interrupted:
        print(f"  interrupted: {result.updates_done} of {result.config.num_updates} updates kept")
    if "solved" in summary:
        solved = summary["solved"]
        at = np.asarray(solved["solved_at_update"])
        steps = np.asarray([v for v in solved["env_steps_to_solve"] if v is not None])
        print(f"solved (mean return over the last {FINAL_WINDOW} updates >= "
              f"{solved['solved_return']:g}): {solved['seeds_solved']} of {len(at)} seeds"
              + (f"; updates to solve median {np.median(at[at > 0]):.0f} (max {at.max()}), "
                 f"env steps median {np.median(steps):,.0f}" if steps.size else "")
              + f"; {result.wall_seconds:.1f} s wall with compilation")
    print(f"throughput: {result.steps_per_second:,.0f} env steps/s ({result.env_steps:,} steps in "
          f"{result.run_seconds:.1f}s; compile {result.compile_seconds:.1f}s, excluded)")
    print(f"wrote {out}/{{config.json, metrics.npz, summary.json, curves.png}}")


@dataclass(frozen=True)
class Grid:
    """Values to sweep; a field left empty keeps the base config's value."""

    env: tuple[str, ...] = ()
    """e.g. --grid.env CartPole-v1 Acrobot-v1: one sweep over several envs; `report` then
    adds normalized scores across them (one compile per value)."""
    num_updates: tuple[int, ...] = ()
    """(one compile per value)"""
    optimizer: tuple[Literal["adam", "sgd"], ...] = ()
    """(one compile per value)"""
    learning_rate: tuple[float, ...] = ()
    """e.g. --grid.learning-rate 1e-3 3e-3 1e-2 (traced: no recompile)."""
    gamma: tuple[float, ...] = ()
    """(traced)"""
    ent_coef: tuple[float, ...] = ()
    """(traced)"""
    vf_coef: tuple[float, ...] = ()
    """(traced)"""
    max_grad_norm: tuple[float, ...] = ()
    """(traced)"""
    value_learning_rate: tuple[float, ...] = ()
    """(traced; needs --baseline separate)"""
    hidden_sizes: tuple[str, ...] = ()
    """comma-separated widths per value, e.g. 64,64 128,128 (one compile per value)."""
    num_envs: tuple[int, ...] = ()
    """(one compile per value)"""
    horizon: tuple[int, ...] = ()
    """(one compile per value)"""
    baseline: tuple[Literal["none", "shared", "separate", "group"], ...] = ()
    """(one compile per value)"""
    gamma_t_weighting: tuple[bool, ...] = ()
    """e.g. --grid.gamma-t-weighting False True (one compile per value)"""
    return_mode: tuple[Literal["reward_to_go", "episode"], ...] = ()
    """(one compile per value)"""
    normalize_returns: tuple[Literal["none", "batch", "episode"], ...] = ()
    """(one compile per value)"""

    def to_dict(self) -> dict[str, list]:
        grid = {}
        for f in dataclasses.fields(self):
            values = list(getattr(self, f.name))
            if f.name == "hidden_sizes":
                values = [_widths(v) for v in values]
            if values:
                grid[f.name] = values
        return grid


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise ValueError(f"grid.hidden_sizes value {text!r}; allowed: comma-separated "
                         "integers such as 64,64 (empty for a linear policy)") from None


def sweep(
    config: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes],
    grid: Grid,
    seeds: int = 64,
    first_seed: int = 0,
    out: Path | None = None,
    overwrite: bool = False,
    memory_fraction: float = 0.5,
    memory_budget_gb: float | None = None,
    max_runs_per_chunk: int | None = None,
    chunk_updates: int = 25,
    checkpoint_every: float = 60.0,
    metric: Literal["iqm", "mean"] = "iqm",
    progress: bool = True,
    distributed: bool = False,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    peer_timeout: float = 1800.0,
    log: str = "none",
) -> Exit:
    """Run a grid of hyper-parameters x seeds; re-running the same command resumes.

    Several processes (one per host) share one sweep when started with the same command
    and --out plus their distributed settings (README, "Sweeps on several hosts").

    Args:
      config: the base configuration; --grid.* fields override it per grid point.
      grid: the values to sweep.
      seeds: seeds per grid point.
      first_seed: seeds are first_seed, first_seed+1, ...
      out: sweep directory; default runs/sweep-<env>-<time>.
      overwrite: replace a non-empty --out that holds a different sweep (or any files).
      memory_fraction: share of free device memory a chunk of runs may use.
      memory_budget_gb: an explicit budget instead of --memory-fraction.
      max_runs_per_chunk: cap on the runs trained together in one vmapped call.
      chunk_updates: updates per jitted call (progress, NaN checks, checkpoints between).
      checkpoint_every: seconds between checkpoints of the chunk in progress.
      metric: sort the report by this statistic of the final return.
      progress: show a progress bar.
      distributed: join JAX's distributed runtime (jax.distributed.initialize); settings
        not given below come from the environment it reads (JAX_COORDINATOR_ADDRESS,
        SLURM, Open MPI, Kubernetes). Implied by any of the next three.
      coordinator_address: HOST:PORT where process 0 serves the runtime.
      num_processes: processes sharing the sweep.
      process_id: this process, 0..num_processes-1; process 0 writes the report.
      peer_timeout: seconds of no new chunk or checkpoint after which process 0 stops
        waiting for the others (and the others stop waiting for sweep.json).
      log: metrics loggers, e.g. tensorboard,csv: one TensorBoard run per configuration
        and seed in out/tensorboard/point_P/seed_K, and/or out/metrics.csv (long format,
        with a point column); none.
    """
    from reinforce_jax import distributed as dist
    from reinforce_jax.loggers import make_loggers, parse_log
    from reinforce_jax.report import report
    from reinforce_jax.sweep import SweepDir, check_sweep, run_sweep

    loggers = parse_log(log)
    settings = (coordinator_address, num_processes, process_id)
    distributed = distributed or any(v is not None for v in settings)
    processes = dist.Processes()
    if distributed:  # refuse bad input before joining (and waiting for) other processes
        dist.check_settings(*settings)
        if out is None:
            raise ValueError("--out is missing; allowed: with several processes, the one "
                             "directory they share (each would pick its own default)")
        if overwrite:
            raise ValueError("--overwrite with --distributed; allowed: one of them (empty "
                             "--out before a multi-process launch)")
        check_sweep(config, grid.to_dict(), seeds, memory_fraction, memory_budget_gb,
                    max_runs_per_chunk, peer_timeout=peer_timeout)
        processes = dist.initialize(*settings)
    out = Path(out) if out is not None else Path("runs") / (
        f"sweep-{config.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    callbacks = make_loggers(loggers, out, out.name)
    try:
        result = run_sweep(config, grid.to_dict(), seeds, out, first_seed, memory_fraction,
                           memory_budget_gb, max_runs_per_chunk, chunk_updates,
                           checkpoint_every, overwrite, progress, processes, peer_timeout,
                           callbacks)
    finally:
        for callback in callbacks:
            callback.close()
    for msg in result.messages:
        print(msg)
    me = f"process {processes.index} of {processes.count}"
    wrote = (f"wrote {len(result.chunks_written)} chunk(s)"
             + (f" ({', '.join(result.chunks_written)})" if result.chunks_written else ""))
    if processes.index > 0:  # process 0 writes the results and the report
        if result.interrupted:
            return Exit(EXIT_SIGNAL + _received_signal(), f"{me} interrupted: {wrote}; re-run "
                        f"the same command to resume ({out})")
        return Exit(EXIT_OK, f"{me} done: {wrote} into {out}; process 0 writes the report")
    if processes.count > 1:
        print(f"{me}: {wrote}")
    groups = len(result.plan.groups)
    print(f"compiles: {result.compiles} (for {groups} distinct shape(s); "
          f"{result.compile_seconds:.1f}s)   runs: {result.finished.sum()} of "
          f"{result.finished.size}   wall: {result.wall_seconds:.1f}s")
    if result.run_seconds > 0:
        print(f"throughput: {result.steps_this_session / result.run_seconds:,.0f} env steps/s "
              f"over the runs trained by this command (compile excluded)")
    sweep_dir = SweepDir(out)
    sweep_dir.write_results(result)
    if "csv" in loggers:
        sweep_dir.write_metrics_csv()
    if loggers:
        print(f"logged metrics to {', '.join(str(cb.where) for cb in callbacks)}")
    if result.finished.any():
        report(out, metric, FINAL_WINDOW, result=result)
    finished, total = int(result.finished.sum()), int(result.finished.size)
    usable = int((result.finished & (result.diverged_at < 0)).sum())
    if result.interrupted:
        return Exit(EXIT_SIGNAL + _received_signal(), f"interrupted with {finished} of {total}"
                    f" runs finished; re-run the same command to resume ({out})")
    if result.missing_from:
        return Exit(dist.EXIT_PEERS_MISSING, f"{total - finished} of {total} runs missing: "
                    f"process(es) {', '.join(map(str, result.missing_from))} stopped before "
                    f"their chunks were done; re-run the launch (same commands) to finish "
                    f"them; partial results in {out}")
    if usable == 0:
        return Exit(EXIT_DIVERGED, f"every run diverged ({finished} of {total} finished, none "
                    f"finite); results in {out}")
    note = f", {finished - usable} diverged and excluded" if finished > usable else ""
    return Exit(EXIT_OK, f"done: {finished} of {total} runs{note}; results in {out}")


def eval_cmd(
    run_dir: Annotated[Path, tyro.conf.Positional],
    episodes: int = 20,
    greedy: bool = False,
    seed: int = 0,
    overwrite: bool = False,
    point: int | None = None,
) -> Exit:
    """Evaluate every kept policy of a train run (or of one sweep configuration) on fresh
    episodes; write RUN_DIR/eval.json (a sweep: RUN_DIR/eval_point<P>.json).

    Args:
      run_dir: a directory written by `reinforce-jax train` or `reinforce-jax sweep`.
      episodes: whole episodes per seed (each up to the env's time limit).
      greedy: take the most likely action (categorical: argmax; Gaussian: the mean)
        instead of sampling as in training.
      seed: PRNG seed of the episodes (reset states, sampled actions).
      overwrite: replace an existing eval.json.
      point: for a sweep, the configuration to evaluate (its index in the report).
    """
    from reinforce_jax.evaluate import evaluate
    from reinforce_jax.policy import load_policies

    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ValueError(f"episodes={episodes!r}; allowed: an integer >= 1")
    if seed < 0:
        raise ValueError(f"seed={seed!r}; allowed: an integer >= 0")
    policies = load_policies(run_dir, point)
    where = Path(run_dir).parent if Path(run_dir).is_file() else Path(run_dir)  # a .npz
    path = where / ("eval.json" if point is None else f"eval_point{point}.json")
    if path.exists() and not overwrite:
        raise ValueError(f"{str(path)!r} exists; pass --overwrite to replace it")
    result = evaluate(policies, episodes, greedy, seed)
    for line in result.report_lines(policies.config.env):
        print(line)
    write_json(path, {"run_dir": str(run_dir), "env": policies.config.env,
                      "updates_trained": policies.updates_done, **result.to_dict()})
    print(f"wrote {path}")
    agg, n = result.aggregate(), len(result.seeds)
    if agg["mean"] is None:
        return Exit(EXIT_DIVERGED, f"every seed diverged in training ({n} of {n}); no "
                    f"aggregate (per-seed returns in {path})")
    low, high = agg["ci95"]
    return Exit(EXIT_OK, f"evaluated {agg['seeds_included']} of {n} seeds x {episodes} "
                f"episodes: mean return {agg['mean']:.2f} [{low:.2f}, {high:.2f}]")


def render_cmd(
    run_dir: Annotated[Path, tyro.conf.Positional],
    seed: int | None = None,
    out: Path | None = None,
    greedy: bool = False,
    max_frames: int | None = None,
    episode_seed: int = 0,
    overwrite: bool = False,
    point: int | None = None,
) -> Exit:
    """Play one episode with a kept policy and draw it to a GIF (gymnax's visualizer).

    Args:
      run_dir: a directory written by `reinforce-jax train` or `reinforce-jax sweep`.
      seed: which kept seed acts; default: the first one.
      out: the GIF to write; default RUN_DIR/seed<K>.gif.
      greedy: take the most likely action instead of sampling as in training.
      max_frames: stop after this many steps (one frame per step); default: the whole
        episode, up to the env's time limit.
      episode_seed: PRNG seed of the episode (reset state, sampled actions).
      overwrite: replace an existing --out.
      point: for a sweep, the configuration whose policy acts (its index in the report).
    """
    import jax

    from reinforce_jax.policy import load_policies
    from reinforce_jax.render import check_renderable, render_gif

    if max_frames is not None and (isinstance(max_frames, bool) or max_frames < 1):
        raise ValueError(f"max_frames={max_frames!r}; allowed: an integer >= 1")
    if episode_seed < 0:
        raise ValueError(f"episode_seed={episode_seed!r}; allowed: an integer >= 0")
    policies = load_policies(run_dir, point)
    if seed is None:
        seed = policies.seeds[0]
    if seed not in policies.seeds:
        raise ValueError(f"seed={seed!r}; allowed: one of the kept seeds "
                         f"{', '.join(map(str, policies.seeds))}")
    policy = policies[policies.seeds.index(seed)]
    check_renderable(policy)
    where = Path(run_dir).parent if Path(run_dir).is_file() else Path(run_dir)
    name = f"seed{seed}.gif" if point is None else f"point{point}_seed{seed}.gif"
    out = Path(out) if out is not None else where / name
    if out.suffix.lower() != ".gif":
        raise ValueError(f"--out {str(out)!r}; allowed: a path ending in .gif")
    if out.exists() and not overwrite:
        raise ValueError(f"--out {str(out)!r} exists; pass --overwrite to replace it")
    if not out.parent.is_dir():
        raise ValueError(f"--out {str(out)!r}: its directory does not exist")
    shown = render_gif(policy, out, jax.random.key(episode_seed), greedy, max_frames)
    return Exit(EXIT_OK, f"wrote {out}: seed {seed}, {shown['frames']} frames "
                f"({shown['how']}), return {shown['return']:.2f}")


def report_cmd(
    run_dir: Annotated[Path, tyro.conf.Positional],
    metric: Literal["iqm", "mean"] = "iqm",
    window: int = FINAL_WINDOW,
    reference: int | None = None,
    references: Path | None = None,
) -> Exit:
    """Print a sweep's table (sorted by --metric) and write its plots.

    Args:
      run_dir: a directory written by `reinforce-jax sweep`.
      metric: sort by the IQM or the mean of the final return.
      window: final return = mean episode return over this many last updates.
      reference: configuration index for the probability of improvement (default: the best).
      references: for a sweep over several envs, a JSON file {env: [random, best]} of the
        returns that normalize to 0 and 1 (default: a random policy's, measured, and the
        best gymnax publishes; an env with neither needs it).
    """
    from reinforce_jax.report import report, usable_runs
    from reinforce_jax.sweep import collect

    if window < 1:
        raise ValueError(f"window={window!r}; allowed: an integer >= 1")
    if not (Path(run_dir) / "sweep.json").exists():
        raise ValueError(f"run_dir={str(run_dir)!r} has no sweep.json; allowed: a directory "
                         "written by `reinforce-jax sweep`")
    refs = None
    if references is not None:
        allowed = "allowed: a JSON file mapping env names to [random, best] or to best"
        try:
            refs = json.loads(Path(references).read_text())
        except (OSError, ValueError):
            raise ValueError(f"references={str(references)!r} cannot be read as JSON; "
                             f"{allowed}") from None
        if not isinstance(refs, dict):
            raise ValueError(f"references={str(references)!r} holds {type(refs).__name__}; "
                             f"{allowed}")
        for env, value in refs.items():
            ok = isinstance(value, (int, float)) or (isinstance(value, list) and len(value) == 2
                                                     and all(isinstance(v, (int, float))
                                                             for v in value))
            if not ok:
                raise ValueError(f"references[{env!r}]={value!r}; {allowed}")
    result = collect(run_dir)
    report(run_dir, metric, window, reference, result=result, references=refs)
    usable, total = int(usable_runs(result).sum()), int(result.diverged_at.size)
    if usable == 0:
        return Exit(EXIT_DIVERGED, f"no finished run with a finite result ({total} runs in "
                    f"{run_dir}); nothing to compare")
    return Exit(EXIT_OK, f"reported {usable} of {total} runs")


def envs_cmd() -> Exit:
    """List every environment --env accepts, with its observation and action spaces."""
    from reinforce_jax.envs import describe_envs

    rows = describe_envs()
    width = max(len(r[0]) for r in rows)
    print(f"{'env':<{width}}  {'observation':<16}  action")
    for name, obs, act in rows:
        print(f"{name:<{width}}  {obs:<16}  {act}")
    print("DigitMatch-N and DigitMatch-N-onehot take any N >= 2")
    return Exit(EXIT_OK, f"{len(rows)} environments")


COMMANDS = {"train": train, "sweep": sweep, "report": report_cmd, "envs": envs_cmd,
            "eval": eval_cmd, "render": render_cmd, "parity": parity_cmd}


COMPILE_CACHE_VAR = "REINFORCE_JAX_COMPILE_CACHE"


def use_compile_cache() -> str | None:
    """Keep compiled programs on disk between commands (JAX's persistent compilation
    cache), so running a config again skips XLA's compile (CartPole's 16-seed program:
    5.6 s cold, 1.2 s from the cache here). The folder is ``$REINFORCE_JAX_COMPILE_CACHE``,
    by default ``~/.cache/reinforce_jax/xla``; ``off`` turns it off. The cached program is
    the one XLA would build, so results are unchanged. Returns the folder used."""
    where = os.environ.get(COMPILE_CACHE_VAR, str(Path.home() / ".cache" / "reinforce_jax"
                                                  / "xla"))
    if where.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    try:
        Path(where).mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile every time, as without the cache
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", where)
    return where


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code (``EXIT_*``). Errors are one line on stderr."""
    use_compile_cache()
    real_stderr = sys.stderr
    parse_errors = io.StringIO()

    def parsed(fn):  # called by tyro once the arguments are parsed: give stderr back
        @functools.wraps(fn)
        def run(*args, **kwargs):
            sys.stderr = real_stderr
            return fn(*args, **kwargs)
        return run

    _received_signal.signum = signal.SIGINT
    previous = signal.signal(signal.SIGTERM, _interrupt_on_sigterm)
    sys.stderr = parse_errors  # tyro draws its errors in a box; we print them as one line
    try:
        outcome = tyro.extras.subcommand_cli_from_dict(
            {name: parsed(fn) for name, fn in COMMANDS.items()}, args=argv,
            prog="reinforce-jax")
    except SystemExit as stop:  # tyro: --help (code 0) or an argument it cannot parse
        sys.stderr = real_stderr
        if stop.code in (0, None):
            real_stderr.write(parse_errors.getvalue())
            return EXIT_OK
        args = sys.argv[1:] if argv is None else argv
        command = " " + args[0] if args and args[0] in COMMANDS else ""
        return _error(_one_line(parse_errors.getvalue()).rstrip(".")
                      + f"; see reinforce-jax{command} --help")
    except ValueError as err:
        return _error(str(err))
    except OSError as err:  # a path that cannot be read or written
        where = f" {str(err.filename)!r}" if err.filename else ""
        return _error(f"{err.strerror or err}{where}")
    except KeyboardInterrupt:  # before the first update (compiling) or while writing
        return _finish(Exit(EXIT_SIGNAL + _received_signal(), "interrupted before training "
                            "finished a chunk of updates; nothing trained was written"))
    finally:
        sys.stderr = real_stderr
        signal.signal(signal.SIGTERM, previous)
    return _finish(outcome)


def _finish(outcome: Exit) -> int:
    print(f"reinforce-jax: {outcome.line}", file=sys.stdout if outcome.code == 0 else sys.stderr,
          flush=True)
    return outcome.code


def _error(message: str) -> int:
    print(f"reinforce-jax: error: {message}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def _one_line(box: str) -> str:
    """tyro's boxed error as one line: its title and the text before the first rule."""
    lines = [line.strip().strip("│╭╮╰╯").strip() for line in box.strip().splitlines()]
    title = re.sub(r"^[─\s]*|[─\s]*$", "", lines[0]) if lines else ""
    body = []
    for line in lines[1:]:
        if not line or set(line) <= set("─ "):
            break
        body.append(line)
    text = " ".join(body) or title
    return f"{title}: {text}" if title and body and not text.startswith(title) else text


def _received_signal() -> int:
    """The signal that interrupted the command (SIGINT unless SIGTERM arrived)."""
    return int(_received_signal.signum)


def _interrupt_on_sigterm(signum, frame):
    # a cluster's scheduler stops a job with SIGTERM: treat it as Ctrl-C, so the updates
    # done so far are written, and tell the script which signal it was
    _received_signal.signum = signum
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
