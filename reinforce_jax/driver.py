"""Host-side training driver: many seeds in jitted chunks, with progress and NaN checks.

The pure program lives in ``train.py``; this module only calls it chunk by chunk so a
person sees progress, a diverging seed is reported the moment it appears, training
stops early once every seed has diverged, and Ctrl-C keeps the updates done so far.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

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


def hyperparams_array(hp: HyperParams) -> HyperParams:
    return HyperParams(*(jnp.asarray(v, jnp.float32) for v in hp))


def run_training(
    config: TrainConfig,
    num_seeds: int = 16,
    first_seed: int = 0,
    chunk_updates: int = 10,
    progress: bool = True,
    hparams: HyperParams | None = None,
) -> TrainResult:
    """Train ``num_seeds`` independent agents (seeds ``first_seed ...``) with ``config``.

    ``hparams`` overrides ``config.hyperparams``; a leaf with a leading axis of length
    ``num_seeds`` gives each seed its own value (one compile for all of them).
    Raises ``ValueError`` for bad input before anything is compiled.
    """
    if isinstance(num_seeds, bool) or not isinstance(num_seeds, int) or num_seeds < 1:
        raise ValueError(f"seeds={num_seeds!r}; allowed: an integer >= 1")
    if not isinstance(chunk_updates, int) or chunk_updates < 1:
        raise ValueError(f"chunk_updates={chunk_updates!r}; allowed: an integer >= 1")
    trainer = Trainer(config)  # validates the config
    seeds = list(range(first_seed, first_seed + num_seeds))
    keys = seed_keys(seeds)
    hp = hyperparams_array(config.hyperparams if hparams is None else hparams)
    hp_axes = HyperParams(*(0 if jnp.ndim(v) == 1 else None for v in hp))
    for name, value in zip(HyperParams._fields, hp):
        if jnp.ndim(value) not in (0, 1) or (jnp.ndim(value) == 1 and len(value) != num_seeds):
            raise ValueError(f"hparams.{name} has shape {jnp.shape(value)}; allowed: a scalar "
                             f"or one value per seed ({num_seeds},)")

    compile_start = time.perf_counter()
    state = jax.jit(jax.vmap(trainer.init))(keys)
    jax.block_until_ready(state)
    chunk = choose_chunk(config.num_updates, chunk_updates)
    compiled: dict[int, Any] = {}

    def program(size: int):
        if size not in compiled:
            fn = jax.jit(jax.vmap(trainer.run_updates, in_axes=(0, hp_axes, None)),
                         static_argnums=2, donate_argnums=0)
            compiled[size] = fn.lower(state, hp, size).compile()
        return compiled[size]

    program(chunk)
    compile_seconds = time.perf_counter() - compile_start

    history: dict[str, list[np.ndarray]] = {name: [] for name in METRIC_NAMES}
    diverged_at = np.full(num_seeds, -1, np.int64)
    messages: list[str] = []
    interrupted = False
    run_seconds = 0.0
    done = 0
    bar = _progress_bar(config.num_updates, progress)
    try:
        while done < config.num_updates:
            size = min(chunk, config.num_updates - done)
            if size not in compiled:  # a remainder chunk: compile it outside the timed region
                t0 = time.perf_counter()
                program(size)
                compile_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            state, metrics = compiled[size](state, hp)
            metrics = jax.device_get(metrics)
            run_seconds += time.perf_counter() - t0
            for name in METRIC_NAMES:
                history[name].append(np.asarray(metrics[name]))
            bad = ~np.isfinite(metrics["loss"]) | ~np.isfinite(metrics["grad_norm"])
            for s in np.flatnonzero(bad.any(axis=1) & (diverged_at < 0)):
                diverged_at[s] = done + int(np.argmax(bad[s]))
                msg = f"seed {seeds[s]} diverged (non-finite loss) at update {diverged_at[s]}"
                messages.append(msg)
                _write(bar, msg)
            done += size
            if bar is not None:
                ok = diverged_at < 0
                ret = metrics["episode_return"][ok, -1] if ok.any() else np.array([np.nan])
                bar.update(size)
                bar.set_postfix(ret=f"{np.mean(ret):.1f}", diverged=int((~ok).sum()))
            if (diverged_at >= 0).all():
                messages.append("every seed diverged; stopping early")
                _write(bar, messages[-1])
                break
    except KeyboardInterrupt:
        interrupted = True
        messages.append(f"interrupted after {done} updates; keeping what was done")
    finally:
        if bar is not None:
            bar.close()

    stacked = {name: (np.concatenate(v, axis=1) if v else np.zeros((num_seeds, 0)))
               for name, v in history.items()}
    return TrainResult(
        config=config, seeds=seeds, metrics=stacked, diverged_at=diverged_at,
        compile_seconds=compile_seconds, run_seconds=run_seconds,
        env_steps=int(stacked["env_steps"].sum()), interrupted=interrupted,
        params=jax.device_get(state.params), messages=messages,
    )


def final_returns(result: TrainResult, last: int = 10) -> np.ndarray:
    """Mean episode return over the last ``last`` updates per seed; NaN if diverged."""
    curves = result.metrics["episode_return"]
    if curves.shape[1] == 0:
        return np.full(curves.shape[0], np.nan)
    final = curves[:, -last:].mean(axis=1)
    return np.where(result.diverged_at >= 0, np.nan, final)


def _progress_bar(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="upd", desc="training", dynamic_ncols=True)


def _write(bar, msg: str) -> None:
    if bar is not None:
        bar.write(msg)
    else:
        print(msg, flush=True)
