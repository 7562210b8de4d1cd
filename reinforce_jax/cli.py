"""Command line: ``reinforce-jax train`` trains many seeds and writes a run directory.

The edge of the program: it validates input, calls the driver, prints the summary and
writes ``config.json``, ``metrics.npz``, ``summary.json`` and ``curves.png``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import tyro

from reinforce_jax.config import TrainConfig
from reinforce_jax.driver import TrainResult, final_returns, run_training
from reinforce_jax.io import prepare_out_dir, write_json, write_npz
from reinforce_jax.plots import plot_curves
from reinforce_jax.stats import summarize

FINAL_WINDOW = 10  # final_return = mean episode return over this many last updates


def train(
    config: Annotated[TrainConfig, tyro.conf.OmitArgPrefixes],
    seeds: int = 16,
    first_seed: int = 0,
    out: Path | None = None,
    overwrite: bool = False,
    chunk_updates: int = 10,
    progress: bool = True,
) -> TrainResult:
    """Train REINFORCE over many seeds at once and write a run directory.

    Args:
      config: the training configuration.
      seeds: number of independent seeds, trained together in one vmapped program.
      first_seed: seeds are first_seed, first_seed+1, ...
      out: run directory; default runs/<env>-<time>. Must be new or empty.
      overwrite: replace a non-empty --out.
      chunk_updates: updates per jitted call (progress and NaN checks happen between).
      progress: show a progress bar.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds={seeds!r}; allowed: an integer >= 1")
    config.validate()
    out = Path(out) if out is not None else Path("runs") / (
        f"{config.env}-{time.strftime('%Y%m%d-%H%M%S')}")
    out = prepare_out_dir(out, overwrite)
    write_json(out / "config.json", {"config": config, "seeds": seeds, "first_seed": first_seed})

    result = run_training(config, seeds, first_seed, chunk_updates, progress)
    summary = write_run(out, result)
    print_summary(result, summary, out)
    return result


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
        "messages": result.messages,
    }
    write_npz(out / "metrics.npz", {**result.metrics, "seeds": np.asarray(result.seeds),
                                    "diverged_at": result.diverged_at})
    write_json(out / "summary.json", summary)
    if result.updates_done > 0:
        plot_curves(result.metrics["episode_return"], out / "curves.png",
                    f"REINFORCE on {result.config.env} ({len(result.seeds)} seeds)",
                    diverged=result.diverged_at >= 0)
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
    print(f"throughput: {result.steps_per_second:,.0f} env steps/s ({result.env_steps:,} steps in "
          f"{result.run_seconds:.1f}s; compile {result.compile_seconds:.1f}s, excluded)")
    print(f"wrote {out}/{{config.json, metrics.npz, summary.json, curves.png}}")


def main(argv: list[str] | None = None) -> int:
    try:
        tyro.extras.subcommand_cli_from_dict({"train": train}, args=argv,
                                             prog="reinforce-jax")
    except ValueError as err:
        print(f"reinforce-jax: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
