"""Per-chunk callbacks that put training metrics where people look.

A logger is a ``driver.ChunkCallback``: the host loop (``driver.train_batch``) starts it
on each batch of runs (a train run is one batch; a sweep, one batch per chunk), calls it
as ``logger(outcome, updates_done)`` after every jitted chunk of updates with all metrics
so far (``outcome.metrics``: name -> ``[runs, updates]``), and ends it with the batch.
Each start writes the batch's whole history anew, so a resumed batch (whose history
restarts from its checkpoint) rewrites its logs instead of duplicating updates.

* ``CsvLogger``: long format, one row per (run, update, metric): ``run, seed, update,
  env_steps, metric, value`` in a train run's ``metrics.csv``. A sweep adds ``point`` (the
  configuration's index) after ``run``, writes each chunk's rows to ``csv/CHUNK.csv`` as
  it trains, and joins them into ``metrics.csv`` at the end (``SweepDir``).
* ``TensorBoardLogger``: tensorboardX event files, one TensorBoard run per seed
  (``tensorboard/seed_K``; a sweep: ``tensorboard/point_P/seed_K``), one scalar per
  metric, with cumulative env steps as the step.
* ``WandbLogger``: Weights & Biases (the ``wandb`` extra), one W&B run per seed (a sweep:
  per configuration and seed), grouped by the run directory's name, stepped by
  cumulative env steps. ``WANDB_PROJECT`` names the project (default "reinforce_jax") and
  ``WANDB_MODE=offline`` keeps it local. W&B cannot rewrite a run's history, so after a
  resume the runs log into new W&B runs.
* ``ProgressLog``: one line per chunk on stdout, for logs without a progress bar.

``run`` is the run (or sweep) directory's name; ``update`` counts updates done (1 = after
the first); ``env_steps`` is that run's cumulative number of env steps through that update.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from reinforce_jax.driver import ChunkCallback, Runs

LOGGERS = ("tensorboard", "csv", "wandb")


def parse_log(text: str) -> tuple[str, ...]:
    """``--log`` as a tuple of logger names: "none", or a comma-separated subset of
    ``LOGGERS``."""
    names = tuple(n.strip() for n in str(text).split(",") if n.strip())
    if names in ((), ("none",)):
        return ()
    bad = [n for n in names if n not in LOGGERS]
    if bad or len(set(names)) != len(names):
        raise ValueError(f"log={text!r}; allowed: none, or a comma-separated list of "
                         f"{', '.join(LOGGERS)} (each once)")
    if "wandb" in names:
        _check_wandb()
    return names


def _check_wandb() -> None:
    """W&B must be installed, and either logged in or told to stay local: otherwise it
    would stop the run after compiling, asking for a login no one can type."""
    import os

    try:
        import wandb  # noqa: F401
    except ImportError:
        raise ValueError("log='wandb' needs the wandb package; allowed: install it with "
                         "pip install \"reinforce_jax[wandb]\", or log tensorboard,csv"
                         ) from None
    if os.environ.get("WANDB_MODE", "") in ("offline", "disabled", "dryrun") \
            or os.environ.get("WANDB_API_KEY"):
        return
    try:
        import netrc

        if netrc.netrc().authenticators("api.wandb.ai"):
            return
    except (OSError, netrc.NetrcParseError):
        pass
    raise ValueError("log='wandb' without W&B credentials; allowed: run `wandb login`, set "
                     "WANDB_API_KEY, or set WANDB_MODE=offline to keep the logs local")


def make_loggers(names: tuple[str, ...], out: Path, run: str) -> list[ChunkCallback]:
    """The loggers ``names`` (from ``parse_log``) writing into run or sweep directory
    ``out``; each makes a fresh writer over the runs of every batch it is started on."""
    out = Path(out)

    def csv_logger(runs: Runs):
        path = out / "metrics.csv" if runs.points is None else out / "csv" / f"{runs.name}.csv"
        return CsvLogger(path, run, runs.seeds, runs.points)

    made = {"csv": lambda: PerBatch(csv_logger, out / "metrics.csv"),
            "tensorboard": lambda: PerBatch(
                lambda runs: TensorBoardLogger(out / "tensorboard", runs.seeds, runs.points),
                out / "tensorboard"),
            "wandb": lambda: PerBatch(lambda runs: WandbLogger(out, run, runs), out / "wandb")}
    return [made[name]() for name in names]


class PerBatch(ChunkCallback):
    """Makes a logger over each batch's runs (``make(runs)``) when the batch starts and
    closes it when the batch ends; ``where`` says where the logs go."""

    def __init__(self, make: Callable[[Runs], Any], where: Path):
        self.make, self.where = make, Path(where)
        self.logger = None

    def start(self, runs: Runs, outcome: Any) -> None:
        self.close()
        self.logger = self.make(runs)

    def __call__(self, outcome: Any, done: int) -> None:
        self.logger(outcome, done)

    def end(self, outcome: Any) -> None:
        self.close()

    def close(self) -> None:
        if self.logger is not None:
            self.logger.close()
            self.logger = None


def _cumulative_steps(outcome: Any) -> np.ndarray:
    return np.cumsum(np.asarray(outcome.metrics["env_steps"], np.int64), axis=1)


class CsvLogger:
    """Long-format CSV: one row per (run, update, metric); a ``point`` column when the
    runs are a sweep's (``points``: each run's configuration index)."""

    COLUMNS = ("run", "seed", "update", "env_steps", "metric", "value")
    SWEEP_COLUMNS = ("run", "point", "seed", "update", "env_steps", "metric", "value")

    def __init__(self, path: Path, run: str, seeds: list[int], points: list[int] | None = None):
        self.where = self.path = Path(path)
        self.run, self.seeds, self.points = run, list(seeds), points
        self.file = self.writer = None
        self.written = 0

    def __call__(self, outcome: Any, done: int) -> None:
        if self.file is None:  # the first call starts the file anew (see the module doc)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "w", newline="")
            self.writer = csv.writer(self.file)
            self.writer.writerow(self.COLUMNS if self.points is None else self.SWEEP_COLUMNS)
        steps = _cumulative_steps(outcome)
        names = list(outcome.metrics)
        for i, seed in enumerate(self.seeds):
            who = (self.run, seed) if self.points is None else (self.run, self.points[i], seed)
            for u in range(self.written, done):
                for name in names:
                    value = float(outcome.metrics[name][i, u])
                    self.writer.writerow((*who, u + 1, int(steps[i, u]), name, repr(value)))
        self.written = done
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def join_csv(parts: list[Path], path: Path) -> None:
    """Write ``path``: the rows of every CSV in ``parts`` under the first one's header
    (atomically; each part's own header is dropped)."""
    from reinforce_jax.io import atomic_write

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            for k, part in enumerate(parts):
                with open(part, newline="") as src:
                    header = src.readline()
                    if k == 0:
                        f.write(header)
                    shutil.copyfileobj(src, f)

    atomic_write(path, write)


def _run_dir(seed: int, point: int | None) -> str:
    return f"seed_{seed}" if point is None else f"point_{point}/seed_{seed}"


class TensorBoardLogger:
    """tensorboardX event files: ``log_dir/seed_K`` (a sweep: ``log_dir/point_P/seed_K``),
    scalars stepped by env steps."""

    def __init__(self, log_dir: Path, seeds: list[int], points: list[int] | None = None):
        self.where = self.log_dir = Path(log_dir)
        self.dirs = [self.log_dir / _run_dir(s, None if points is None else points[i])
                     for i, s in enumerate(seeds)]
        self.writers: list = []
        self.written = 0

    def __call__(self, outcome: Any, done: int) -> None:
        from tensorboardX import SummaryWriter

        if not self.writers:  # the first call starts the logs anew (see the module doc)
            for d in self.dirs:
                shutil.rmtree(d, ignore_errors=True)
            self.writers = [SummaryWriter(str(d)) for d in self.dirs]
        steps = _cumulative_steps(outcome)
        for i, writer in enumerate(self.writers):
            for u in range(self.written, done):
                for name, values in outcome.metrics.items():
                    writer.add_scalar(name, float(values[i, u]), int(steps[i, u]))
            writer.flush()
        self.written = done

    def close(self) -> None:
        for writer in self.writers:
            writer.close()
        self.writers = []


class WandbLogger:
    """Weights & Biases: one run per seed (``<run>/seed_K``; a sweep's:
    ``<run>/point_P/seed_K``), grouped by ``run``, each with its configuration, scalars
    stepped by cumulative env steps; W&B's files go to ``out/wandb``."""

    def __init__(self, out: Path, run: str, runs: Runs):
        self.where = Path(out) / "wandb"
        self.run, self.runs = run, runs
        self.wandb_runs: list = []
        self.written = 0

    def __call__(self, outcome: Any, done: int) -> None:
        import os

        import wandb

        from reinforce_jax.io import jsonable

        if not self.wandb_runs:
            self.where.mkdir(parents=True, exist_ok=True)
            runs = self.runs
            for i, seed in enumerate(runs.seeds):
                point = None if runs.points is None else runs.points[i]
                config = {"seed": seed} | ({} if point is None else {"point": point})
                config |= jsonable(runs.configs[i]) if runs.configs else {}
                # the mode is read here, not when wandb first set itself up in this process
                self.wandb_runs.append(wandb.init(
                    project=os.environ.get("WANDB_PROJECT", "reinforce_jax"),
                    mode=os.environ.get("WANDB_MODE") or None, group=self.run,
                    name=f"{self.run}/{_run_dir(seed, point)}", dir=str(self.where.parent),
                    reinit="create_new", config=config))
        steps = _cumulative_steps(outcome)
        for i, wandb_run in enumerate(self.wandb_runs):
            for u in range(self.written, done):
                wandb_run.log({name: float(values[i, u])
                               for name, values in outcome.metrics.items()}
                              | {"update": u + 1}, step=int(steps[i, u]))
        self.written = done

    def close(self) -> None:
        for wandb_run in self.wandb_runs:
            wandb_run.finish()
        self.wandb_runs = []


class ProgressLog(ChunkCallback):
    """One line per chunk: updates done, env steps, mean return, divergences, time."""

    def __init__(self, num_updates: int, prefix: str = "training"):
        self.num_updates, self.prefix = num_updates, prefix
        self.t0 = time.monotonic()

    def __call__(self, outcome: Any, done: int) -> None:
        ok = np.asarray(outcome.diverged_at) < 0
        ret = outcome.metrics["episode_return"]
        mean = f"{np.mean(ret[ok, done - 1]):.2f}" if ok.any() and done else "n/a"
        steps = int(np.sum(outcome.metrics["env_steps"]))
        rate = steps / outcome.run_seconds if outcome.run_seconds > 0 else float("nan")
        print(f"{self.prefix}: update {done}/{self.num_updates}  env steps {steps:,}  "
              f"return {mean} (mean over {int(ok.sum())} seeds)  diverged {int((~ok).sum())}"
              f"  {rate:,.0f} steps/s  {time.monotonic() - self.t0:.0f}s", flush=True)
