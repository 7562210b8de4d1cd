"""Per-chunk callbacks that put training metrics where people look.

Each logger is called as ``logger(outcome, updates_done)`` after every jitted chunk of
updates (``driver.train_batch``'s ``on_chunk``), with all metrics so far
(``outcome.metrics``: name -> ``[seeds, updates]``), and writes the updates it has not
written yet. Its first call writes the whole history, so a resumed run (whose history
restarts from its checkpoint) rewrites its logs instead of duplicating updates.

* ``CsvLogger``: ``metrics.csv`` in long format, one row per (seed, update, metric):
  ``run, seed, update, env_steps, metric, value``.
* ``TensorBoardLogger``: tensorboardX event files, one TensorBoard run per seed
  (``tensorboard/seed_K``), one scalar per metric, with cumulative env steps as the step.
* ``WandbLogger``: Weights & Biases (the ``wandb`` extra), one W&B run per seed, grouped
  by the run directory's name, stepped by cumulative env steps. ``WANDB_PROJECT`` names
  the project (default "reinforce_jax") and ``WANDB_MODE=offline`` keeps it local. W&B
  cannot rewrite a run's history, so after ``--resume`` the seeds log into new W&B runs.
* ``ProgressLog``: one line per chunk on stdout, for logs without a progress bar.

``update`` counts updates done (1 = after the first); ``env_steps`` is that seed's
cumulative number of env steps through that update.
"""

from __future__ import annotations

import csv
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

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


def make_loggers(names: tuple[str, ...], out: Path, run: str, seeds: list[int],
                 config: Any = None) -> list:
    """The loggers ``names`` (from ``parse_log``) writing into run directory ``out``."""
    made = {"csv": lambda: CsvLogger(Path(out) / "metrics.csv", run, seeds),
            "tensorboard": lambda: TensorBoardLogger(Path(out) / "tensorboard", seeds),
            "wandb": lambda: WandbLogger(Path(out), run, seeds, config)}
    return [made[name]() for name in names]


def _cumulative_steps(outcome: Any) -> np.ndarray:
    return np.cumsum(np.asarray(outcome.metrics["env_steps"], np.int64), axis=1)


class CsvLogger:
    """Long-format CSV: one row per (seed, update, metric)."""

    COLUMNS = ("run", "seed", "update", "env_steps", "metric", "value")

    def __init__(self, path: Path, run: str, seeds: list[int]):
        self.where = self.path = Path(path)
        self.run, self.seeds = run, list(seeds)
        self.file = self.writer = None
        self.written = 0

    def __call__(self, outcome: Any, done: int) -> None:
        if self.file is None:  # the first call starts the file anew (see the module doc)
            self.file = open(self.path, "w", newline="")
            self.writer = csv.writer(self.file)
            self.writer.writerow(self.COLUMNS)
        steps = _cumulative_steps(outcome)
        names = list(outcome.metrics)
        for i, seed in enumerate(self.seeds):
            for u in range(self.written, done):
                for name in names:
                    value = float(outcome.metrics[name][i, u])
                    self.writer.writerow((self.run, seed, u + 1, int(steps[i, u]), name,
                                          repr(value)))
        self.written = done
        self.file.flush()

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


class TensorBoardLogger:
    """tensorboardX event files: ``log_dir/seed_K``, scalars stepped by env steps."""

    def __init__(self, log_dir: Path, seeds: list[int]):
        self.where = self.log_dir = Path(log_dir)
        self.seeds = list(seeds)
        self.writers: list = []
        self.written = 0

    def __call__(self, outcome: Any, done: int) -> None:
        from tensorboardX import SummaryWriter

        if not self.writers:  # the first call starts the logs anew (see the module doc)
            shutil.rmtree(self.log_dir, ignore_errors=True)
            self.writers = [SummaryWriter(str(self.log_dir / f"seed_{s}")) for s in self.seeds]
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


class WandbLogger:
    """Weights & Biases: one run per seed (``<run>/seed_K``, grouped by ``run``), scalars
    stepped by cumulative env steps; W&B's files go to ``out/wandb``."""

    def __init__(self, out: Path, run: str, seeds: list[int], config: Any = None):
        self.where = Path(out) / "wandb"
        self.run, self.seeds, self.config = run, list(seeds), config
        self.runs: list = []
        self.written = 0

    def __call__(self, outcome: Any, done: int) -> None:
        import os

        import wandb

        from reinforce_jax.io import jsonable

        if not self.runs:
            self.where.mkdir(parents=True, exist_ok=True)
            # the mode is read here, not when wandb first set itself up in this process
            self.runs = [wandb.init(project=os.environ.get("WANDB_PROJECT", "reinforce_jax"),
                                    mode=os.environ.get("WANDB_MODE") or None,
                                    group=self.run, name=f"{self.run}/seed_{s}",
                                    dir=str(self.where.parent), reinit="create_new",
                                    config={"seed": s, **(jsonable(self.config) or {})})
                         for s in self.seeds]
        steps = _cumulative_steps(outcome)
        for i, run in enumerate(self.runs):
            for u in range(self.written, done):
                run.log({name: float(values[i, u]) for name, values in outcome.metrics.items()}
                        | {"update": u + 1}, step=int(steps[i, u]))
        self.written = done

    def close(self) -> None:
        for run in self.runs:
            run.finish()


class ProgressLog:
    """One line per chunk: updates done, env steps, mean return, divergences, time."""

    def __init__(self, num_updates: int, prefix: str = "training"):
        self.num_updates, self.prefix = num_updates, prefix
        self.start = time.monotonic()

    def __call__(self, outcome: Any, done: int) -> None:
        ok = np.asarray(outcome.diverged_at) < 0
        ret = outcome.metrics["episode_return"]
        mean = f"{np.mean(ret[ok, done - 1]):.2f}" if ok.any() and done else "n/a"
        steps = int(np.sum(outcome.metrics["env_steps"]))
        rate = steps / outcome.run_seconds if outcome.run_seconds > 0 else float("nan")
        print(f"{self.prefix}: update {done}/{self.num_updates}  env steps {steps:,}  "
              f"return {mean} (mean over {int(ok.sum())} seeds)  diverged {int((~ok).sum())}"
              f"  {rate:,.0f} steps/s  {time.monotonic() - self.start:.0f}s", flush=True)

    def close(self) -> None:
        pass
