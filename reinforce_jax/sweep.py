"""Sweeps: a grid of hyper-parameters x seeds, one compiled program per distinct shape.

Traced hyper-parameters (``HyperParams``: learning rate, gamma, entropy and value
coefficients, clip norm) are vmapped with the seeds, so a grid over them costs one
compile. Any other ``TrainConfig`` field may be swept too: those are static (shapes such
as ``hidden_sizes``, ``num_envs``, ``horizon``, or program structure such as ``baseline``),
so they split the grid into groups, one compile per distinct static configuration.
Every group is cut into equal chunks of runs sized to a memory budget (the last chunk
padded), each chunk sharded over the local devices.

A sweep directory (``SweepDir``, which owns its files) is resumable: each finished chunk
is written atomically to ``chunks/``, a chunk in progress is checkpointed to ``ckpt/``,
and re-running the same command skips what is done. Each chunk is one batch of the
driver's host loop, so progress, divergence checks, checkpoints and loggers are the same
callbacks as in ``train``. Several processes (hosts) can share one sweep directory,
each training its own chunks: see ``reinforce_jax.distributed``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import numpy as np

from reinforce_jax.config import HyperParams, TrainConfig
from reinforce_jax.distributed import Processes, wait_until
from reinforce_jax.driver import (
    METRIC_NAMES,
    BatchOutcome,
    Checkpointer,
    Program,
    ProgressBar,
    Runs,
    bar_write,
    load_outcome,
    per_run_hparams,
    round_up,
    seed_keys,
    train_batch,
)
from reinforce_jax.io import from_jsonable, jsonable, prepare_out_dir, write_json, write_npz
from reinforce_jax.policy import flat_params
from reinforce_jax.train import StabilityWarning, Trainer, value_step_overshoot

SWEEPABLE = HyperParams._fields
STATIC_FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in SWEEPABLE)


@dataclass(frozen=True)
class Point:
    """One configuration of the grid."""

    index: int
    values: dict[str, Any]  # swept field -> value
    config: TrainConfig

    @property
    def label(self) -> str:
        return " ".join(f"{k}={format_value(v)}" for k, v in self.values.items()) or "base"


def format_value(v) -> str:
    if isinstance(v, tuple):
        return "x".join(map(str, v)) or "linear"
    return f"{v:g}" if isinstance(v, float) else str(v)


def expand_grid(base: TrainConfig, grid: dict[str, list]) -> list[Point]:
    """Every combination of ``grid`` values applied to ``base`` (last key varies fastest).

    Raises ``ValueError`` for an unknown field, an empty value list or a bad value.
    """
    allowed = SWEEPABLE + STATIC_FIELDS
    for name, values in grid.items():
        if name not in allowed:
            raise ValueError(f"grid field {name!r}; allowed: {', '.join(allowed)}")
        if len(values) == 0:
            raise ValueError(f"grid field {name!r} has no values; give at least one")
        if len(set(values)) != len(values):
            raise ValueError(f"grid field {name!r} repeats a value: {list(values)}")
    base.validate()
    points = []
    names = list(grid)
    for i, combo in enumerate(itertools.product(*(grid[n] for n in names))):
        values = dict(zip(names, combo))
        config = dataclasses.replace(base, **values).validate()
        points.append(Point(i, values, config))
    return points


def shape_key(config: TrainConfig) -> TrainConfig:
    """The config with traced hyper-parameters reset: equal keys share one compile."""
    return dataclasses.replace(config, **{n: getattr(TrainConfig, n) for n in SWEEPABLE})


def estimate_run_bytes(trainer: Trainer) -> int:
    """Rough device memory of one run's update: the trajectory, the forward/backward
    activations of the loss and the optimizer state (checked against XLA's own figure,
    which ``Program`` reports after compiling)."""
    cfg, spec = trainer.config, trainer.spec
    steps = trainer.num_steps * cfg.num_envs
    obs = math.prod(spec.obs_shape)
    per_step_traj = 4 * (2 * obs + spec.action_dim + 12)
    widths = list(cfg.hidden_sizes) * (2 if cfg.baseline == "separate" else 1)
    per_step_act = 4 * 3 * (sum(widths) + 2 * spec.action_dim + 1)
    params = jax.eval_shape(trainer.init, jax.random.key(0)).params  # GRUs need a memory
    n_params = sum(math.prod(x.shape) for x in jax.tree.leaves(params))
    return int(steps * (per_step_traj + per_step_act) + 4 * 4 * n_params)


def available_memory_bytes(device=None) -> int:
    """Free memory of ``device``: the allocator's limit minus use on accelerators,
    the host's available RAM on CPU."""
    device = device or jax.local_devices()[0]
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def runs_per_chunk(num_runs: int, run_bytes: int, budget_bytes: int, num_devices: int,
                   max_runs: int | None = None) -> int:
    """Largest even split of ``num_runs`` whose chunk fits the budget (per device)."""
    fit = max(1, budget_bytes * num_devices // max(run_bytes, 1))
    if max_runs is not None:
        fit = min(fit, max_runs)
    chunks = max(1, -(-num_runs // fit))
    return round_up(-(-num_runs // chunks), num_devices)


@dataclass
class SweepPlan:
    points: list[Point]
    seeds: list[int]
    groups: list[list[int]]  # point indices sharing one shape (one compile)
    chunk_runs: list[int]  # runs per chunk, per group

    def runs(self, group: int) -> list[tuple[int, int]]:
        """(point index, seed) of every run in ``group``, point-major."""
        return [(p, s) for p in self.groups[group] for s in self.seeds]

    def chunks(self, group: int) -> list[list[tuple[int, int]]]:
        runs, size = self.runs(group), self.chunk_runs[group]
        return [runs[i:i + size] for i in range(0, len(runs), size)]

    def chunk_ids(self) -> list[tuple[int, int]]:
        """(group, chunk) of every chunk, group by group: chunk k of the sweep is the k-th."""
        return [(g, i) for g in range(len(self.groups)) for i in range(len(self.chunks(g)))]


def make_plan(points: list[Point], seeds: list[int], budget_bytes: int,
              max_runs: int | None = None, num_devices: int | None = None) -> SweepPlan:
    num_devices = num_devices or len(jax.local_devices())
    groups: dict[TrainConfig, list[int]] = {}
    for p in points:
        groups.setdefault(shape_key(p.config), []).append(p.index)
    group_list = list(groups.values())
    chunk_runs = []
    for members in group_list:
        trainer = _group_trainer(points[members[0]].config)
        chunk_runs.append(runs_per_chunk(len(members) * len(seeds), estimate_run_bytes(trainer),
                                         budget_bytes, num_devices, max_runs))
    return SweepPlan(points, seeds, group_list, chunk_runs)


@dataclass
class SweepResult:
    plan: SweepPlan
    metrics: dict[str, np.ndarray]  # name -> [points, seeds, updates]
    diverged_at: np.ndarray  # [points, seeds], -1 if the run stayed finite
    compiles: int
    compile_seconds: float
    run_seconds: float
    wall_seconds: float
    interrupted: bool
    messages: list[str]
    finished: np.ndarray | None = None  # [points, seeds]: the run's chunk file exists
    steps_this_session: int = 0  # env steps of the chunks trained by this call
    processes: Processes = Processes()  # this process among those sharing the sweep
    chunks_written: list[str] = dataclasses.field(default_factory=list)  # by this call
    missing_from: list[int] = dataclasses.field(default_factory=list)  # processes whose
    #                            chunks process 0 gave up waiting for (empty: none missing)


def check_sweep(base: TrainConfig, grid: dict[str, list], seeds: int,
                memory_fraction: float = 0.5, memory_budget_gb: float | None = None,
                max_runs_per_chunk: int | None = None, overwrite: bool = False,
                processes: Processes = Processes(), peer_timeout: float = 1800.0,
                ) -> list[Point]:
    """Refuse bad sweep arguments with one ``ValueError``; return the grid's points.

    Cheap (nothing compiles), so the command line calls it before joining other processes.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}; allowed: an integer >= 1")
    if not 0 < memory_fraction <= 1:
        raise ValueError(f"memory_fraction={memory_fraction!r}; allowed: 0 < fraction <= 1")
    if memory_budget_gb is not None and not memory_budget_gb > 0:
        raise ValueError(f"memory_budget_gb={memory_budget_gb!r}; allowed: a number > 0")
    if max_runs_per_chunk is not None and max_runs_per_chunk < 1:
        raise ValueError(f"max_runs_per_chunk={max_runs_per_chunk!r}; allowed: an integer >= 1")
    if processes.count < 1 or not 0 <= processes.index < processes.count:
        raise ValueError(f"processes={tuple(processes)!r}; allowed: (index, count) with "
                         "0 <= index < count")
    if overwrite and processes.count > 1:
        # one process deleting the directory while others write into it loses their chunks
        raise ValueError(f"overwrite with {processes.count} processes; allowed: overwrite in "
                         "a single process only (empty --out before a multi-process launch)")
    if not peer_timeout > 0:
        raise ValueError(f"peer_timeout={peer_timeout!r}; allowed: seconds > 0")
    points = expand_grid(base, grid)
    warn_unstable(points)
    return points


def warn_unstable(points: list[Point]) -> None:
    """A ``StabilityWarning`` for every configuration whose value step must overshoot
    (one trainer serves a shape group, so its own warning would cover one point only)."""
    from reinforce_jax.envs import make_env

    for point in points:
        spec = make_env(point.config.env)[2]
        message = value_step_overshoot(point.config, point.config.rollout_length(spec))
        if message is not None:
            warnings.warn(f"configuration {point.index} ({point.label}): {message}",
                          StabilityWarning)


def _group_trainer(config: TrainConfig) -> Trainer:
    """The trainer of a shape group; ``warn_unstable`` has warned per point already."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StabilityWarning)
        return Trainer(config)


def run_sweep(
    base: TrainConfig,
    grid: dict[str, list],
    seeds: int,
    out: Path,
    first_seed: int = 0,
    memory_fraction: float = 0.5,
    memory_budget_gb: float | None = None,
    max_runs_per_chunk: int | None = None,
    chunk_updates: int = 25,
    checkpoint_every: float = 60.0,
    overwrite: bool = False,
    progress: bool = True,
    processes: Processes = Processes(),
    peer_timeout: float = 1800.0,
    callbacks: Sequence[Callable[[BatchOutcome, int], None]] = (),
) -> SweepResult:
    """Run (or resume) a sweep into ``out``; see the module docstring.

    Re-running with the same ``base``, ``grid``, ``seeds`` and ``first_seed`` resumes;
    any other existing non-empty ``out`` is refused unless ``overwrite``.

    With ``processes=Processes(index, count)`` this call trains only its own chunks
    (``reinforce_jax.distributed``). Process 0 writes ``sweep.json``; the others wait for
    it. Process 0 then waits for every other chunk before returning, and gives up when no
    chunk or checkpoint has changed for ``peer_timeout`` seconds (``missing_from``).

    Every chunk is one batch of the host loop (``driver.train_batch``): between its jitted
    calls come the divergence check, the progress bar, the checkpoint saver and then
    ``callbacks`` (loggers; ``driver.ChunkCallback``, told each chunk's runs by ``start``).
    """
    wall0 = time.perf_counter()
    points = check_sweep(base, grid, seeds, memory_fraction, memory_budget_gb,
                         max_runs_per_chunk, overwrite, processes, peer_timeout)
    seed_list = list(range(first_seed, first_seed + seeds))
    sweep_dir = SweepDir(out)
    out = sweep_dir.out

    def budget() -> int:
        return (int(memory_budget_gb * 2**30) if memory_budget_gb is not None
                else int(memory_fraction * available_memory_bytes()))

    plan, resuming = sweep_dir.open(SweepDir.identity(base, grid, seeds, first_seed), points,
                                    seed_list, budget, max_runs_per_chunk, overwrite,
                                    processes, peer_timeout)
    done_files = sweep_dir.finished()
    mine = {(g, i) for k, (g, i) in enumerate(plan.chunk_ids()) if processes.owns(k)}
    my_runs = sum(len(plan.chunks(g)[i]) for g, i in mine)
    runs_done = sum(len(plan.chunks(g)[i]) for g, i in mine
                    if SweepDir.chunk_name(g, i) in done_files)
    who = f"process {processes.index} of {processes.count}: " if processes.count > 1 else ""
    if processes.count > 1:
        resuming = runs_done > 0 or any(
            sweep_dir.checkpoint_path(SweepDir.chunk_name(g, i)).exists() for g, i in mine)
    if resuming:
        print(f"{who}resuming {out}: {runs_done} of {my_runs} runs already done", flush=True)
    compiles, compile_seconds, run_seconds, steps_done = 0, 0.0, 0.0, 0
    program = None

    def postfix(outcome: BatchOutcome) -> dict:  # this session's rate, compile excluded
        secs = run_seconds + outcome.run_seconds
        steps = steps_done + int(outcome.metrics["env_steps"].sum())
        return {"steps_per_s": f"{steps / max(secs, 1e-9):,.0f}",
                "compiles": compiles + program.compiles}

    bar = ProgressBar(my_runs, "run", "sweep", per_run=True, postfix=postfix) if progress \
        else None
    say = functools.partial(bar_write, bar)
    if bar is not None:
        bar.update(runs_done)
    saver = Checkpointer(lambda runs: sweep_dir.checkpoint_path(runs.name), checkpoint_every,
                         at_end=False)
    chunk_callbacks = [c for c in (bar, saver) if c is not None] + list(callbacks)
    messages: list[str] = []
    written: list[str] = []
    missing_from: list[int] = []
    interrupted = False
    try:
        for g in range(len(plan.groups)):
            chunks = plan.chunks(g)
            todo = [i for i in range(len(chunks))
                    if (g, i) in mine and SweepDir.chunk_name(g, i) not in done_files]
            if not todo:
                continue
            trainer = _group_trainer(plan.points[plan.groups[g][0]].config)
            program = Program(trainer, plan.chunk_runs[g])
            for i in todo:
                members = chunks[i]
                runs = Runs(SweepDir.chunk_name(g, i), [s for _, s in members],
                            trainer.config.num_updates,
                            [f"{plan.points[p].label} seed {s}" for p, s in members],
                            points=[p for p, _ in members],
                            configs=[plan.points[p].config for p, _ in members])
                hp = per_run_hparams(HyperParams(*(
                    np.asarray([plan.points[p].config.hyperparams[k] for p, _ in members])
                    for k in range(len(SWEEPABLE)))), len(members))
                start = sweep_dir.load_checkpoint(runs.name, trainer, seed_keys(runs.seeds))
                outcome = train_batch(program, runs, hp, chunk_updates, resume=start,
                                      callbacks=chunk_callbacks, say=say)
                for m in outcome.messages:
                    if m not in messages:
                        messages.append(m)
                if outcome.interrupted:  # the saver has checkpointed what it could
                    interrupted = True
                    break
                sweep_dir.write_chunk(runs, outcome)
                written.append(runs.name)
                run_seconds += outcome.run_seconds
                steps_done += int(outcome.metrics["env_steps"].sum())
            compiles += program.compiles
            compile_seconds += program.compile_seconds
            if interrupted:
                break
            say(f"{who}shape group {g}: {len(plan.groups[g])} configs x "
                f"{len(seed_list)} seeds in chunks of {plan.chunk_runs[g]} runs; "
                f"{program.compiles} compile(s), {program.compile_seconds:.1f}s")
        if processes.count > 1 and processes.index == 0 and not interrupted:
            missing_from = _wait_for_peers(sweep_dir, plan, processes, peer_timeout, say)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if bar is not None:
            bar.close()
    if interrupted:
        messages.append(f"{who}interrupted; re-run the same command to resume")
    if missing_from:
        messages.append(f"gave up after {peer_timeout:g}s without a new chunk or checkpoint "
                        f"from process(es) {', '.join(map(str, missing_from))}")
    result = sweep_dir.collect(plan)
    result.compiles, result.compile_seconds = compiles, compile_seconds
    result.run_seconds, result.interrupted = run_seconds, interrupted
    result.steps_this_session = steps_done
    result.processes, result.chunks_written, result.missing_from = (
        processes, written, missing_from)
    result.wall_seconds = time.perf_counter() - wall0
    if processes.index > 0:  # runs not finished yet are other processes' business
        result.messages = messages
    else:
        result.messages = messages + result.messages
    return result


def _wait_for_peers(sweep_dir: SweepDir, plan: SweepPlan, processes: Processes,
                    timeout: float, say: Callable[[str], None]) -> list[int]:
    """Process 0: wait until every chunk file exists; return the processes whose chunks
    are still missing when ``timeout`` seconds pass without any chunk activity."""
    names = [SweepDir.chunk_name(g, i) for g, i in plan.chunk_ids()]

    def missing() -> list[int]:  # one directory listing per look, not a stat per chunk
        done = sweep_dir.finished()
        return [k for k, n in enumerate(names) if n not in done]

    todo = missing()
    if todo:
        peers = sorted({k % processes.count for k in todo})
        say(f"process 0 of {processes.count}: waiting for {len(todo)} chunk(s) of "
            f"process(es) {', '.join(map(str, peers))} (giving up after {timeout:g}s "
            "without a new chunk or checkpoint)")
    if wait_until(lambda: not missing(), sweep_dir.out, timeout):
        return []
    return sorted({k % processes.count for k in missing()})


class SweepDir:
    """The files of one sweep directory; every read and write of them goes through here.

    ``sweep.json``: the sweep's identity (base config, grid, seeds) and its plan (shape
    groups, runs per chunk). ``chunks/NAME.npz``: a finished chunk's runs (``point``,
    ``seed``, ``diverged_at``, ``metric/*``, ``params/*``), one atomic write.
    ``ckpt/NAME.npz``: the chunk in training (``driver.save_outcome``). ``csv/NAME.csv``:
    its logged rows (``--log csv``). At the end of a command: ``results.npz``,
    ``sweep_summary.json`` and ``metrics.csv``.
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.spec = self.out / "sweep.json"

    @staticmethod
    def identity(base: TrainConfig, grid: dict, seeds: int, first_seed: int) -> dict:
        """What makes two sweeps the same sweep (and a re-run a resume)."""
        return jsonable({"base": base, "grid": grid, "seeds": seeds, "first_seed": first_seed})

    @staticmethod
    def chunk_name(group: int, chunk: int) -> str:
        """The chunk's file stem in ``chunks/``, ``ckpt/`` and ``csv/``."""
        return f"g{group:03d}-c{chunk:05d}"

    def chunk_path(self, name: str) -> Path:
        return self.out / "chunks" / f"{name}.npz"

    def checkpoint_path(self, name: str) -> Path:
        return self.out / "ckpt" / f"{name}.npz"

    def csv_path(self, name: str) -> Path:
        return self.out / "csv" / f"{name}.csv"

    def chunk_files(self) -> list[Path]:
        """The finished chunks' files, in chunk order."""
        return sorted((self.out / "chunks").glob("*.npz"))

    def finished(self) -> set[str]:
        """Names of the finished chunks (one directory listing)."""
        return {f.stem for f in self.chunk_files()}

    def open(self, identity: dict, points: list[Point], seeds: list[int],
             budget_bytes: Callable[[], int], max_runs: int | None, overwrite: bool,
             processes: Processes, peer_timeout: float) -> tuple[SweepPlan, bool]:
        """Start the sweep ``identity`` here, or find it here to resume: (plan, resuming).

        A directory holding another sweep, or other files, is refused unless
        ``overwrite``. Processes other than 0 wait for process 0's ``sweep.json``.
        """
        out = self.out
        if processes.index > 0 and not wait_until(self.spec.exists, out, peer_timeout):
            raise ValueError(f"--out {str(out)!r} has no sweep.json from process 0 after "
                             f"{peer_timeout:g}s; allowed: an --out on a filesystem that every "
                             "process shares, with process 0 running")
        resuming = self.spec.exists() and not overwrite
        if resuming:
            saved = json.loads(self.spec.read_text())
            if saved["identity"] != identity:
                diff = [k for k in identity if saved["identity"].get(k) != identity[k]]
                fix = "pass --overwrite to replace it" if processes.count == 1 else "empty it"
                raise ValueError(f"--out {str(out)!r} holds a different sweep (differs in: "
                                 f"{', '.join(diff)}); {fix}, or choose another directory")
            plan = SweepPlan(points, seeds, saved["groups"], saved["chunk_runs"])
        else:
            prepare_out_dir(out, overwrite)
            budget = budget_bytes()
            plan = make_plan(points, seeds, budget, max_runs)
            write_json(self.spec, {"identity": identity, "groups": plan.groups,
                                   "chunk_runs": plan.chunk_runs, "memory_budget_bytes": budget,
                                   "devices": [str(d) for d in jax.local_devices()]})
        devices = len(jax.local_devices())
        if processes.count > 1 and any(size % devices for size in plan.chunk_runs):
            raise ValueError(f"process {processes.index} has {devices} local devices, and "
                             f"sweep.json's chunks of {plan.chunk_runs} runs do not split over "
                             "them; allowed: the same number of local devices on every process")
        (out / "chunks").mkdir(exist_ok=True)
        (out / "ckpt").mkdir(exist_ok=True)
        return plan, resuming

    def load_plan(self) -> SweepPlan:
        """The plan of the sweep here, rebuilt from its ``sweep.json``."""
        saved = json.loads(self.spec.read_text())
        ident = saved["identity"]
        base = TrainConfig(**from_jsonable(ident["base"]))
        grid = {k: list(from_jsonable(v)) for k, v in ident["grid"].items()}
        points = expand_grid(base, grid)
        seeds = list(range(ident["first_seed"], ident["first_seed"] + ident["seeds"]))
        return SweepPlan(points, seeds, saved["groups"], saved["chunk_runs"])

    def load_checkpoint(self, name: str, trainer: Trainer, keys: jax.Array
                        ) -> BatchOutcome | None:
        """The checkpoint of chunk ``name``, if any; first removes what a kill left of a
        write of that chunk (temp files)."""
        ckpt = self.checkpoint_path(name)
        for stale in [*ckpt.parent.glob(f".{name}.npz.*.tmp"),
                      *(self.out / "chunks").glob(f".{name}.npz.*.tmp")]:
            stale.unlink()
        return load_outcome(ckpt, trainer, keys) if ckpt.exists() else None

    def write_chunk(self, runs: Runs, outcome: BatchOutcome) -> None:
        """Write a finished chunk, then drop its checkpoint. Each run's final parameters go
        in with its curves: one atomic file, so a kept policy exists exactly when its
        results do."""
        write_npz(self.chunk_path(runs.name), {
            "point": np.asarray(runs.points),
            "seed": np.asarray(runs.seeds),
            "diverged_at": outcome.diverged_at,
            "run_seconds": np.asarray(outcome.run_seconds),
            **{f"metric/{k}": v for k, v in outcome.metrics.items()},
            **{f"params/{k}": v for k, v in flat_params(outcome.state.params).items()}})
        self.checkpoint_path(runs.name).unlink(missing_ok=True)

    def collect(self, plan: SweepPlan | None = None) -> SweepResult:
        """Assemble the finished chunk files into [points, seeds, ...]."""
        plan = self.load_plan() if plan is None else plan
        P, S = len(plan.points), len(plan.seeds)
        U = max(p.config.num_updates for p in plan.points)
        metrics = {k: np.full((P, S, U), np.nan) for k in METRIC_NAMES}
        diverged_at = np.full((P, S), -1, np.int64)
        finished = np.zeros((P, S), bool)
        seed_pos = {s: j for j, s in enumerate(plan.seeds)}
        for f in self.chunk_files():
            with np.load(f) as data:
                for r, (p, s) in enumerate(zip(data["point"], data["seed"])):
                    j = seed_pos[int(s)]
                    for k in METRIC_NAMES:
                        if f"metric/{k}" in data:  # a metric added since stays NaN
                            row = data[f"metric/{k}"][r]
                            metrics[k][p, j, :len(row)] = row
                    diverged_at[p, j] = data["diverged_at"][r]
                    finished[p, j] = True
        msgs = []
        if not finished.all():
            msgs.append(f"{int((~finished).sum())} of {finished.size} runs not finished yet")
        return SweepResult(plan, metrics, diverged_at, 0, 0.0, 0.0, 0.0, False, msgs, finished)

    def write_results(self, result: SweepResult) -> None:
        """``results.npz`` (every finished run's curves) and ``sweep_summary.json``."""
        write_npz(self.out / "results.npz", {**result.metrics,
                                             "diverged_at": result.diverged_at,
                                             "finished": result.finished,
                                             "seeds": np.asarray(result.plan.seeds)})
        write_json(self.out / "sweep_summary.json", {
            "compiles": result.compiles, "shape_groups": len(result.plan.groups),
            "compile_seconds": result.compile_seconds, "run_seconds": result.run_seconds,
            "wall_seconds": result.wall_seconds, "interrupted": result.interrupted,
            "runs_finished": int(result.finished.sum()), "runs": int(result.finished.size),
            "env_steps": int(np.nansum(result.metrics["env_steps"])),
            "messages": result.messages})

    def write_metrics_csv(self) -> Path | None:
        """Join the chunks' CSV rows (``csv/``, in chunk order) into ``metrics.csv``."""
        from reinforce_jax.loggers import join_csv

        parts = sorted((self.out / "csv").glob("*.csv"))
        if not parts:
            return None
        join_csv(parts, self.out / "metrics.csv")
        return self.out / "metrics.csv"


def chunk_name(group: int, chunk: int) -> str:
    """The chunk's file stem (``SweepDir.chunk_name``)."""
    return SweepDir.chunk_name(group, chunk)


def load_plan(out: Path) -> SweepPlan:
    """The plan of the sweep in ``out``, rebuilt from its ``sweep.json``."""
    return SweepDir(out).load_plan()


def collect(out: Path, plan: SweepPlan | None = None) -> SweepResult:
    """Assemble the finished chunk files of a sweep directory into [points, seeds, ...]."""
    return SweepDir(out).collect(plan)
