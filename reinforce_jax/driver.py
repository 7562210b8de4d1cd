"""Host-side training driver: many seeds in jitted chunks, with progress and NaN checks.

The pure program lives in ``train.py``; this module only calls it chunk by chunk so a
person sees progress, a diverging seed is reported the moment it appears, training
stops early once every seed has diverged, and Ctrl-C keeps the updates done so far.
"""

from __future__ import annotations

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
            fn = self._jit(jax.vmap(self.trainer.run_updates, in_axes=(0, 0, None)),
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


@dataclass
class BatchOutcome:
    """What ``train_batch`` produced for the real (unpadded) runs of one batch."""

    state: Any
    metrics: dict[str, np.ndarray]  # name -> [runs, updates_done]
    diverged_at: np.ndarray
    run_seconds: float
    interrupted: bool = False
    messages: list[str] = field(default_factory=list)


def train_batch(
    program: Program,
    keys: jax.Array,
    hp: HyperParams,
    chunk_updates: int,
    *,
    labels: list[str] | None = None,
    resume: BatchOutcome | None = None,
    on_chunk: Callable[[BatchOutcome, int], None] | None = None,
    bar=None,
    bar_scale: float = 1.0,
) -> BatchOutcome:
    """Train ``len(keys)`` runs (per-run ``hp`` leaves of the same length) to the end.

    Between jitted chunks of ``chunk_updates`` updates it records metrics, reports a run
    whose loss or gradient turns non-finite (it keeps training in isolation and is marked,
    never averaged in), stops early once every run has diverged, advances ``bar`` by
    ``bar_scale`` per update and calls ``on_chunk(outcome, updates_done)`` (checkpoints).
    ``resume`` continues a batch from a saved outcome. Ctrl-C keeps the finished chunks.
    """
    n = int(keys.shape[0])
    labels = labels or [f"run {i}" for i in range(n)]
    num_updates = program.trainer.config.num_updates
    hp_dev = program.put(pad_runs(hp, program.batch))
    if resume is None:
        state = program.init(pad_runs(keys, program.batch))
        history: dict[str, list[np.ndarray]] = {k: [] for k in METRIC_NAMES}
        diverged_at = np.full(n, -1, np.int64)
        done, run_seconds, messages = 0, 0.0, []
    else:
        state = program.put(pad_runs(resume.state, program.batch))
        history = {k: [v] for k, v in resume.metrics.items()}
        diverged_at = resume.diverged_at.copy()
        done, run_seconds = resume.metrics["loss"].shape[1], resume.run_seconds
        messages = list(resume.messages)
    chunk = choose_chunk(num_updates, chunk_updates)
    interrupted = False

    def outcome():
        stacked = {k: (np.concatenate(v, axis=1) if v else np.zeros((n, 0)))
                   for k, v in history.items()}
        try:
            real = jax.tree.map(lambda x: x[:n], state)
        except RuntimeError:  # interrupted inside a call that had consumed (donated) it
            real = None
        return BatchOutcome(real, stacked, diverged_at, run_seconds, interrupted, messages)

    try:
        while done < num_updates and not (diverged_at >= 0).all():
            size = min(chunk, num_updates - done)
            fn = program.updates(size, state, hp_dev)  # compiles outside the timed region
            t0 = time.perf_counter()
            state, metrics = fn(state, hp_dev)
            metrics = jax.device_get(metrics)
            run_seconds += time.perf_counter() - t0
            for k in METRIC_NAMES:
                history[k].append(np.asarray(metrics[k])[:n])
            loss, gnorm = history["loss"][-1], history["grad_norm"][-1]
            bad = ~np.isfinite(loss) | ~np.isfinite(gnorm)
            for s in np.flatnonzero(bad.any(axis=1) & (diverged_at < 0)):
                diverged_at[s] = done + int(np.argmax(bad[s]))
                messages.append(f"{labels[s]} diverged (non-finite loss) at update "
                                f"{diverged_at[s]}")
                bar_write(bar, messages[-1])
            done += size
            if bar is not None:
                ok = diverged_at < 0
                ret = history["episode_return"][-1][ok, -1] if ok.any() else np.array([np.nan])
                # fractional steps add up with round-off; never run past the total
                bar.update(min(size * bar_scale, bar.total - bar.n))
                bar.set_postfix(ret=f"{np.mean(ret):.1f}", diverged=int((~ok).sum()),
                                refresh=False)
            if (diverged_at >= 0).all() and done < num_updates:
                messages.append("every run diverged; stopping early")
                bar_write(bar, messages[-1])
            if on_chunk is not None:
                on_chunk(outcome(), done)
    except KeyboardInterrupt:
        interrupted = True
        messages.append(f"interrupted after {done} updates; keeping what was done")
    return outcome()


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
) -> TrainResult:
    """Train ``num_seeds`` independent agents (seeds ``first_seed ...``) with ``config``.

    ``hparams`` overrides ``config.hyperparams``; a leaf with a leading axis of length
    ``num_seeds`` gives each seed its own value (one compile for all of them). Seeds are
    sharded over all local devices. With ``checkpoint`` the training state is saved there
    at most every ``checkpoint_every`` seconds and at the end; ``resume`` continues from it.
    After every chunk of updates the checkpoint saver and then each of ``callbacks``
    (loggers, ``reinforce_jax.loggers``) is called as ``callback(outcome, updates_done)``.
    Raises ``ValueError`` for bad input before anything is compiled.
    """
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"seeds={num_seeds!r}; allowed: an integer >= 1")
    if not isinstance(chunk_updates, int) or chunk_updates < 1:
        raise ValueError(f"chunk_updates={chunk_updates!r}; allowed: an integer >= 1")
    trainer = Trainer(config)  # validates the config
    config = trainer.config  # as validated: num_updates derived from total_env_steps if set
    seeds = list(range(first_seed, first_seed + num_seeds))
    keys = seed_keys(seeds)
    hp = per_run_hparams(config.hyperparams if hparams is None else hparams, num_seeds)
    start = None
    if resume:
        if checkpoint is None or not Path(checkpoint).exists():
            raise ValueError(f"resume=True but checkpoint={checkpoint!r} does not exist")
        start = load_outcome(checkpoint, trainer, keys)
    program = Program(trainer, round_up(num_seeds, len(jax.local_devices())))
    chunk_callbacks = [_Saver(checkpoint, checkpoint_every, config.num_updates), *callbacks]

    def on_chunk(outcome: BatchOutcome, done: int) -> None:
        for callback in chunk_callbacks:
            callback(outcome, done)

    bar = progress_bar(config.num_updates, progress, "upd", "training")
    if bar is not None and start is not None:
        bar.update(start.metrics["loss"].shape[1])
    try:
        out = train_batch(program, keys, hp, chunk_updates, resume=start, bar=bar,
                          labels=[f"seed {s}" for s in seeds], on_chunk=on_chunk)
    finally:
        if bar is not None:
            bar.close()
    return TrainResult(
        config=config, seeds=seeds, metrics=out.metrics, diverged_at=out.diverged_at,
        compile_seconds=program.compile_seconds, run_seconds=out.run_seconds,
        env_steps=int(out.metrics["env_steps"].sum()), interrupted=out.interrupted,
        params=None if out.state is None else jax.device_get(out.state.params),
        messages=out.messages,
    )


class _Saver:
    """``on_chunk`` callback: save the batch at most every ``every`` seconds and at the end."""

    def __init__(self, path: Path | None, every: float, num_updates: int):
        self.path, self.every, self.num_updates = path, every, num_updates
        self.last = time.monotonic()

    def __call__(self, outcome: BatchOutcome, done: int) -> None:
        if self.path is None:
            return
        if done >= self.num_updates or time.monotonic() - self.last >= self.every:
            save_outcome(self.path, outcome)
            self.last = time.monotonic()


def final_returns(result: TrainResult, last: int = 10) -> np.ndarray:
    """Mean episode return over the last ``last`` updates per seed; NaN if diverged."""
    curves = result.metrics["episode_return"]
    if curves.shape[1] == 0:
        return np.full(curves.shape[0], np.nan)
    final = curves[:, -last:].mean(axis=1)
    return np.where(result.diverged_at >= 0, np.nan, final)


def progress_bar(total: float, enabled: bool, unit: str, desc: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    # n may be fractional (a sweep advances by runs x finished fraction): show it rounded
    fmt = ("{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} " + unit
           + " [{elapsed}<{remaining}{postfix}]")
    return tqdm(total=total, unit=unit, desc=desc, dynamic_ncols=True, bar_format=fmt)


def bar_write(bar, msg: str) -> None:
    if bar is not None:
        bar.write(msg)
    else:
        print(msg, flush=True)
