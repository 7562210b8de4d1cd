"""Host-side training driver: many seeds in jitted chunks, with progress and NaN checks.

The pure program lives in ``train.py``; this module only calls it chunk by chunk so a
person sees progress, a diverging seed is reported the moment it appears, training
stops early once every seed has diverged, and Ctrl-C keeps the updates done so far.
One host loop (``train_batch``) serves ``train`` and sweeps: between chunks it calls a
list of ``ChunkCallback``s (divergence check, progress bar, checkpoints, loggers).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

from reinforce_jax.checkpoint import load_state, save_state
from reinforce_jax.config import HyperParams, TrainConfig
from reinforce_jax.rollout import RUN_AXIS
from reinforce_jax.stats import FINAL_WINDOW, final_return
from reinforce_jax.train import METRIC_NAMES, Trainer


@dataclass
class TrainResult:
    """What a driver run produced, on the host."""

    config: TrainConfig
    seeds: list[int]
    metrics: dict[str, np.ndarray]  # name -> [num_seeds, updates_done]
    diverged_at: np.ndarray  # int [num_seeds]: first non-finite update, -1 if none
    compile_seconds: float
    run_seconds: float
    env_steps: int
    interrupted: bool = False
    params: Any = None
    messages: list[str] = field(default_factory=list)
    solved_return: float | None = None  # the --until-solved threshold, if one was set
    solved_at: np.ndarray | None = None  # int [num_seeds]: updates done when solved, or -1
    wall_seconds: float = float("nan")  # start to finish, compilation included

    @property
    def updates_done(self) -> int:
        return int(self.metrics["loss"].shape[1])

    @property
    def steps_per_second(self) -> float:
        return self.env_steps / self.run_seconds if self.run_seconds > 0 else float("nan")


def choose_chunk(num_updates: int, target: int) -> int:
    """Updates per jitted call: a divisor of ``num_updates`` near ``target`` if one exists,
    so every call reuses one compiled program."""
    if num_updates <= target:
        return num_updates
    for size in range(target, max(1, target // 2) - 1, -1):
        if num_updates % size == 0:
            return size
    return target


def seed_keys(seeds: list[int]) -> jax.Array:
    """One independent PRNG key per seed; key i is ``jax.random.key(seeds[i])``."""
    return jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))


# ------------------------------------------------------------------ the engine
class Program:
    """The compiled programs for one ``Trainer`` and one batch of ``batch`` runs.

    Runs are vmapped; when there are several local devices the run axis is sharded over
    a one-axis mesh (``"runs"``) so each device trains its own slice of runs. Batches are
    padded to a multiple of the device count by the caller (``pad_runs``).
    """

    def __init__(self, trainer: Trainer, batch: int, devices: list | None = None):
        self.trainer = trainer
        self.devices = list(devices) if devices is not None else jax.local_devices()
        if batch % len(self.devices):
            raise ValueError(f"batch={batch}; allowed: a multiple of the {len(self.devices)} "
                             "devices (pad with pad_runs)")
        self.batch = batch
        self.sharding = None
        if len(self.devices) > 1:
            # An Auto axis: jit propagates the run sharding through the vmapped program;
            # runs never talk to each other, so no collective appears (no shard_map needed).
            mesh = Mesh(np.asarray(self.devices), ("runs",), axis_types=(AxisType.Auto,))
            self.sharding = NamedSharding(mesh, PartitionSpec("runs"))
        self.compiles = 0
        self.compile_seconds = 0.0
        self._init = None
        self._updates: dict[int, Any] = {}

    def put(self, tree):
        """Place a host tree with a leading run axis on the devices."""
        return tree if self.sharding is None else jax.device_put(tree, self.sharding)

    def _jit(self, fn, **kw):
        if self.sharding is not None:
            kw["out_shardings"] = self.sharding
        return jax.jit(fn, **kw)

    def init(self, keys: jax.Array):
        if self._init is None:
            t0 = time.perf_counter()
            self._init = self._jit(jax.vmap(self.trainer.init)).lower(self.put(keys)).compile()
            self.compile_seconds += time.perf_counter() - t0
        return self._init(self.put(keys))

    def updates(self, size: int, state, hp: HyperParams):
        """The compiled function running ``size`` updates on every run (compiled once)."""
        if size not in self._updates:
            t0 = time.perf_counter()
            fn = self._jit(jax.vmap(self.trainer.run_updates, in_axes=(0, 0, None),
                                    axis_name=RUN_AXIS),
                           static_argnums=2, donate_argnums=0)
            self._updates[size] = fn.lower(state, hp, size).compile()
            self.compiles += 1
            self.compile_seconds += time.perf_counter() - t0
        return self._updates[size]


def pad_runs(tree, size: int):
    """Pad every leaf's leading run axis to ``size`` by repeating the last run."""
    def pad(x):
        n = x.shape[0]
        if n == size:
            return x
        return jnp.concatenate([x, jnp.repeat(x[-1:], size - n, axis=0)])
    return jax.tree.map(pad, tree)


@dataclass(frozen=True)
class Runs:
    """The runs of one ``train_batch`` call, as its per-chunk callbacks are told them."""

    name: str  # "train", or the sweep chunk's file stem (``SweepDir.chunk_name``)
    seeds: list[int]
    num_updates: int
    labels: list[str]  # for messages: "seed 3", "learning_rate=0.01 seed 3"
    points: list[int] | None = None  # a sweep: each run's configuration index
    configs: list[TrainConfig] | None = None  # each run's configuration, where known


@dataclass
class BatchOutcome:
    """What ``train_batch`` produced for the real (unpadded) runs of one batch."""

    state: Any
    metrics: dict[str, np.ndarray]  # name -> [runs, updates_done]
    diverged_at: np.ndarray
    run_seconds: float
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)
    # interrupted while a chunk's metrics were fetched: the state is one chunk ahead of
    # them, so it is not saved as a checkpoint (a resume would skip that chunk's updates)
    state_ahead: bool = False
    stopped: str | None = None  # why a callback stopped the batch early (``SolvedStop``)

    @property
    def updates_done(self) -> int:
        return int(self.metrics["loss"].shape[1])


class ChunkCallback:
    """One step of the host loop, run between jitted chunks of updates (``train_batch``).

    Override what you need. A plain function ``f(outcome, updates_done)`` also serves as
    a callback (its ``__call__`` only).
    """

    def start(self, runs: Runs, outcome: BatchOutcome) -> None:
        """A batch begins; ``outcome`` holds what its checkpoint restored, if any."""

    def __call__(self, outcome: BatchOutcome, done: int) -> None:
        """After each chunk: ``outcome`` holds every update so far (``done`` of them). It
        is the batch's live record: read it during the call, do not keep it."""

    def end(self, outcome: BatchOutcome) -> None:
        """The batch stopped: finished, every run diverged, or interrupted."""

    def close(self) -> None:
        """The command is done with this callback."""


def _hook(callback, name: str):
    return getattr(callback, name, None) or (lambda *args: None)


class DivergenceCheck(ChunkCallback):
    """Marks a run whose loss or gradient norm turns non-finite (``diverged_at``), says so
    at once, and says when every run has (``train_batch`` then stops). A diverged run keeps
    training in isolation and is left out of every mean."""

    def __init__(self, say: Callable[[str], None] = print):
        self.say = say

    def start(self, runs: Runs, outcome: BatchOutcome) -> None:
        self.labels, self.num_updates = runs.labels, runs.num_updates
        self.checked = outcome.updates_done

    def __call__(self, outcome: BatchOutcome, done: int) -> None:
        new = slice(self.checked, done)
        loss, gnorm = outcome.metrics["loss"][:, new], outcome.metrics["grad_norm"][:, new]
        bad = ~np.isfinite(loss) | ~np.isfinite(gnorm)
        for s in np.flatnonzero(bad.any(axis=1) & (outcome.diverged_at < 0)):
            outcome.diverged_at[s] = self.checked + int(np.argmax(bad[s]))
            self._tell(outcome, f"{self.labels[s]} diverged (non-finite loss) at update "
                                f"{outcome.diverged_at[s]}")
        self.checked = done
        if (outcome.diverged_at >= 0).all() and done < self.num_updates:
            self._tell(outcome, "every run diverged; stopping early")

    def _tell(self, outcome: BatchOutcome, message: str) -> None:
        outcome.messages.append(message)
        self.say(message)


class SolvedStop(ChunkCallback):
    """Stops the batch once every run that has not diverged is solved: its mean episode
    return over its last ``window`` updates (its final return, were it to stop there) has
    reached ``threshold``. ``solved_at[r]``: the updates run r had done when it first got
    there, -1 if it has not. A solved run keeps training until every run is solved."""

    def __init__(self, threshold: float, window: int = FINAL_WINDOW):
        self.threshold, self.window = float(threshold), window
        self.solved_at = np.zeros(0, np.int64)

    def start(self, runs: Runs, outcome: BatchOutcome) -> None:
        self.solved_at = np.full(len(runs.seeds), -1, np.int64)
        self(outcome, outcome.updates_done)

    def __call__(self, outcome: BatchOutcome, done: int) -> None:
        returns = outcome.metrics["episode_return"]
        if done < self.window:
            return
        # [runs, done - window + 1]: column j is the mean over updates j .. j + window - 1
        means = np.lib.stride_tricks.sliding_window_view(returns, self.window, axis=1).mean(-1)
        reached = means >= self.threshold  # NaN (a diverged run) never counts
        first = np.where(reached.any(axis=1), reached.argmax(axis=1) + self.window, -1)
        self.solved_at = np.where(self.solved_at >= 0, self.solved_at, first)
        live = outcome.diverged_at < 0
        if live.any() and (self.solved_at[live] >= 0).all() and outcome.stopped is None:
            outcome.stopped = (f"solved: every seed's mean return over its last {self.window} "
                               f"updates reached {self.threshold:g} (the last at update "
                               f"{self.solved_at[live].max()}); stopping after {done} updates")
            outcome.messages.append(outcome.stopped)


class Checkpointer(ChunkCallback):
    """Saves the batch in training (``save_outcome``) to ``path_of(runs)`` at most every
    ``every`` seconds, and when it is interrupted. ``at_end``: also when it stops
    otherwise (train; a sweep writes its finished chunk elsewhere). No path: no saving."""

    def __init__(self, path_of: Callable[[Runs], Path | None], every: float, at_end: bool):
        self.path_of, self.every, self.at_end = path_of, every, at_end

    def start(self, runs: Runs, outcome: BatchOutcome) -> None:
        self.path, self.num_updates = self.path_of(runs), runs.num_updates
        self.last = time.monotonic()

    def __call__(self, outcome: BatchOutcome, done: int) -> None:
        if done < self.num_updates and time.monotonic() - self.last >= self.every:
            self._save(outcome)

    def end(self, outcome: BatchOutcome) -> None:
        if outcome.interrupted or self.at_end:
            self._save(outcome)

    def _save(self, outcome: BatchOutcome) -> None:
        if self.path is None or outcome.state is None or outcome.state_ahead:
            return
        save_outcome(self.path, outcome)
        self.last = time.monotonic()


class ProgressBar(ChunkCallback):
    """A tqdm bar over the updates of one batch (train) or the runs of many (a sweep,
    ``per_run``: a batch of R runs adds R / num_updates per update). ``postfix(outcome)``
    gives the fields shown after it; by default the mean latest return and divergences."""

    def __init__(self, total: float, unit: str, desc: str, per_run: bool = False,
                 postfix: Callable[[BatchOutcome], dict] | None = None):
        from tqdm.auto import tqdm

        # n may be fractional (a sweep advances by runs x finished fraction): show it rounded
        fmt = ("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} " + unit
               + " [{elapsed}<{remaining}{postfix}]")
        self.bar = tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, bar_format=fmt)
        self.per_run, self.postfix = per_run, postfix or _return_postfix
        self.scale, self.seen = 1.0, 0

    def start(self, runs: Runs, outcome: BatchOutcome) -> None:
        self.scale = len(runs.seeds) / runs.num_updates if self.per_run else 1.0
        self.seen = 0
        self._advance(outcome.updates_done)

    def __call__(self, outcome: BatchOutcome, done: int) -> None:
        self._advance(done)
        self.bar.set_postfix(**self.postfix(outcome), refresh=False)

    def _advance(self, done: int) -> None:
        # fractional steps add up with round-off; never run past the total
        self.bar.update(min((done - self.seen) * self.scale, self.bar.total - self.bar.n))
        self.seen = done

    def update(self, n: float) -> None:
        self.bar.update(n)

    def write(self, message: str) -> None:
        self.bar.write(message)

    def close(self) -> None:
        self.bar.close()


def _return_postfix(outcome: BatchOutcome) -> dict:
    ok = outcome.diverged_at < 0
    ret = outcome.metrics["episode_return"][ok, -1] if ok.any() else np.array([np.nan])
    return {"ret": f"{np.mean(ret):.1f}", "diverged": int((~ok).sum())}


def train_batch(
    program: Program,
    runs: Runs,
    hp: HyperParams,
    chunk_updates: int,
    *,
    resume: BatchOutcome | None = None,
    callbacks: Sequence[Callable[[BatchOutcome, int], None]] = (),
    say: Callable[[str], None] = print,
) -> BatchOutcome:
    """Train ``runs`` (per-run ``hp`` leaves of the same length) to the end: the host loop.

    Between jitted chunks of ``chunk_updates`` updates it records the metrics, then calls
    a ``DivergenceCheck`` (messages go to ``say``) and each of ``callbacks`` (progress,
    checkpoints, loggers: ``ChunkCallback``), in that order. It stops early once every run
    has diverged. ``resume`` continues a batch from a saved outcome. Ctrl-C keeps the
    finished chunks.
    """
    n = len(runs.seeds)
    num_updates = program.trainer.config.num_updates
    if runs.num_updates != num_updates:
        raise ValueError(f"runs.num_updates={runs.num_updates}; the program trains "
                         f"{num_updates}")
    hp_dev = program.put(pad_runs(hp, program.batch))
    if resume is None:
        state = program.init(pad_runs(seed_keys(runs.seeds), program.batch))
        history: dict[str, list[np.ndarray]] = {k: [] for k in METRIC_NAMES}
        live = BatchOutcome(None, {k: np.zeros((n, 0)) for k in METRIC_NAMES},
                            np.full(n, -1, np.int64), 0.0)
    else:
        state = program.put(pad_runs(resume.state, program.batch))
        history = {k: [v] for k, v in resume.metrics.items()}
        live = BatchOutcome(None, dict(resume.metrics), resume.diverged_at.copy(),
                            resume.run_seconds, messages=list(resume.messages))
    done = live.updates_done
    chunk = choose_chunk(num_updates, chunk_updates)
    callbacks = [DivergenceCheck(say), *callbacks]

    def real_state():
        try:
            return jax.tree.map(lambda x: x[:n], state)
        except RuntimeError:  # interrupted inside a call that had consumed (donated) it
            return None

    try:
        live.state = real_state()
        for callback in callbacks:
            _hook(callback, "start")(runs, live)
        while (done < num_updates and not (live.diverged_at >= 0).all()
               and live.stopped is None):
            size = min(chunk, num_updates - done)
            fn = program.updates(size, state, hp_dev)  # compiles outside the timed region
            t0 = time.perf_counter()
            live.state_ahead = True  # until this chunk's metrics are in
            state, metrics = fn(state, hp_dev)
            metrics = jax.device_get(metrics)
            live.run_seconds += time.perf_counter() - t0
            for k in METRIC_NAMES:
                history[k].append(np.asarray(metrics[k])[:n])
            live.metrics = {k: np.concatenate(v, axis=1) for k, v in history.items()}
            live.state, live.state_ahead = real_state(), False
            done += size
            for callback in callbacks:
                callback(live, done)
    except KeyboardInterrupt:
        live.interrupted = True
        live.messages.append(f"interrupted after {done} updates; keeping what was done")
    live.state = real_state()
    for callback in callbacks:
        try:
            _hook(callback, "end")(live)
        except KeyboardInterrupt:  # a second Ctrl-C: the other callbacks still end
            live.interrupted = True
    return live


def save_outcome(path: Path, outcome: BatchOutcome) -> None:
    """Checkpoint a batch in training: its state, metrics so far and divergences."""
    extra = {f"metric/{k}": v for k, v in outcome.metrics.items()}
    extra["diverged_at"] = outcome.diverged_at
    save_state(path, outcome.state, extra, {"run_seconds": outcome.run_seconds,
                                            "messages": outcome.messages})


def load_outcome(path: Path, trainer: Trainer, keys: jax.Array) -> BatchOutcome:
    """Read a ``save_outcome`` checkpoint of the runs started from ``keys``."""
    template = jax.eval_shape(jax.vmap(trainer.init), keys)
    state, extra, meta = load_state(path, template)
    metrics = {k[len("metric/"):]: v for k, v in extra.items() if k.startswith("metric/")}
    for k in METRIC_NAMES:  # a checkpoint from before a metric was added: NaN so far
        metrics.setdefault(k, np.full_like(metrics["loss"], np.nan))
    return BatchOutcome(state, metrics, extra["diverged_at"], meta["run_seconds"],
                        messages=meta["messages"])


def per_run_hparams(hp: HyperParams, num_runs: int) -> HyperParams:
    """Broadcast each hyper-parameter to one float32 value per run; scalars are shared."""
    out = []
    for name, value in zip(HyperParams._fields, hp):
        if value is None:  # an optional field left to its default
            out.append(None)
            continue
        value = jnp.asarray(value, jnp.float32)
        if value.ndim not in (0, 1) or (value.ndim == 1 and len(value) != num_runs):
            raise ValueError(f"hparams.{name} has shape {value.shape}; allowed: a scalar "
                             f"or one value per run ({num_runs},)")
        out.append(jnp.broadcast_to(value, (num_runs,)))
    return HyperParams(*out)


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def run_training(
    config: TrainConfig,
    num_seeds: int = 16,
    first_seed: int = 0,
    chunk_updates: int = 10,
    progress: bool = True,
    hparams: HyperParams | None = None,
    checkpoint: Path | None = None,
    checkpoint_every: float = 60.0,
    resume: bool = False,
    callbacks: Sequence[Callable[[BatchOutcome, int], None]] = (),
    until_solved: float | None = None,
) -> TrainResult:
    """Train ``num_seeds`` independent agents (seeds ``first_seed ...``) with ``config``.

    ``hparams`` overrides ``config.hyperparams``; a leaf with a leading axis of length
    ``num_seeds`` gives each seed its own value (one compile for all of them). Seeds are
    sharded over all local devices. With ``checkpoint`` the training state is saved there
    at most every ``checkpoint_every`` seconds, when interrupted and at the end; ``resume``
    continues from it. ``until_solved``: stop once every seed's mean episode return over its
    last ``FINAL_WINDOW`` updates has reached this (``SolvedStop``; ``num_updates`` is
    then the most it trains).
    After every chunk of updates the host loop (``train_batch``) calls its divergence
    check, the progress bar, the checkpoint saver and then each of ``callbacks`` (loggers,
    ``reinforce_jax.loggers``; see ``ChunkCallback``).
    Raises ``ValueError`` for bad input before anything is compiled.
    """
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"seeds={num_seeds!r}; allowed: an integer >= 1")
    if not isinstance(chunk_updates, int) or chunk_updates < 1:
        raise ValueError(f"chunk_updates={chunk_updates!r}; allowed: an integer >= 1")
    if until_solved is not None and not np.isfinite(until_solved):
        raise ValueError(f"until_solved={until_solved!r}; allowed: a finite return or None")
    started = time.perf_counter()
    trainer = Trainer(config)  # validates the config
    config = trainer.config  # as validated: num_updates derived from total_env_steps if set
    seeds = list(range(first_seed, first_seed + num_seeds))
    hp = per_run_hparams(config.hyperparams if hparams is None else hparams, num_seeds)
    start = None
    if resume:
        if checkpoint is None or not Path(checkpoint).exists():
            raise ValueError(f"resume=True but checkpoint={checkpoint!r} does not exist")
        start = load_outcome(checkpoint, trainer, seed_keys(seeds))
    program = Program(trainer, round_up(num_seeds, len(jax.local_devices())))
    runs = Runs("train", seeds, config.num_updates, [f"seed {s}" for s in seeds],
                configs=[config] * num_seeds)
    bar = ProgressBar(config.num_updates, "upd", "training") if progress else None
    saver = Checkpointer(lambda _: checkpoint, checkpoint_every, at_end=True)
    solved = None if until_solved is None else SolvedStop(until_solved)
    try:
        out = train_batch(program, runs, hp, chunk_updates, resume=start,
                          callbacks=[c for c in (solved, bar, saver) if c is not None]
                          + list(callbacks),
                          say=functools.partial(bar_write, bar))
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(
        config=config, seeds=seeds, metrics=out.metrics, diverged_at=out.diverged_at,
        compile_seconds=program.compile_seconds, run_seconds=out.run_seconds,
        env_steps=int(out.metrics["env_steps"].sum()), interrupted=out.interrupted,
        params=None if out.state is None else jax.device_get(out.state.params),
        messages=out.messages, solved_return=until_solved,
        solved_at=None if solved is None else solved.solved_at,
        wall_seconds=time.perf_counter() - started,
    )


def final_returns(result: TrainResult, last: int = FINAL_WINDOW) -> np.ndarray:
    """Mean episode return over the last ``last`` updates per seed (``stats.final_return``);
    NaN if diverged."""
    final = final_return(result.metrics["episode_return"], window=last)
    return np.where(result.diverged_at >= 0, np.nan, final)


def bar_write(bar: ProgressBar | None, msg: str) -> None:
    """Print ``msg`` above the bar, or plainly without one."""
    if bar is not None:
        bar.write(msg)
    else:
        print(msg, flush=True)
