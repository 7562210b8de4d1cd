"""``python -m benchmarks.shapes``: ours vs a plain PureJaxRL-style REINFORCE
(``benchmarks/plain_reinforce.py``) at the shapes users sweep.

    python -m benchmarks.shapes [--quick] [--seeds 16 64] [--envs 48 256 1024]
        [--modes episodic fixed] [--repeats 3] [--updates N] [--out DIR_OR_JSON]

Shapes are seeds x envs x rollout mode on CartPole-v1 with a 2x64 tanh MLP: fixed
windows of 64 steps, or episodic rollouts of up to 500 steps. Ours runs through the
driver's compiled programs (``reinforce_jax.driver.Program``) exactly as users' runs do;
the plain script runs as ``jit(vmap(scan(update)))`` over the seed keys. Every measured
run starts from freshly initialised states (seeds 0..S-1) and does U updates; compile
time is measured apart, every timer stops after ``block_until_ready``, and the two are
interleaved (ours, plain / plain, ours / ...) so drifting machine load hits both alike.

Reported per shape: median and [min, max] over repeats of computed env steps/s (all the
steps played) and valid steps/s (steps inside an episode), the ours/plain ratio (median
of the per-repeat ratios, with its range), compile seconds, and each side's share of the
compute limit (the network's matmul peak over its FLOP per env step, from
``benchmarks.throughput``). Results go to ``benchmarks/results/shapes_{quick,full}.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax

from benchmarks import plain_reinforce
from benchmarks.throughput import flops_per_env_step, machine, matmul_gflops
from reinforce_jax import TrainConfig, make_env
from reinforce_jax.driver import Program, per_run_hparams, seed_keys
from reinforce_jax.io import write_json
from reinforce_jax.train import Trainer

ENV = "CartPole-v1"
HIDDEN_SIZES = (64, 64)
HORIZON = plain_reinforce.HORIZON
# Updates per measured run, chosen so the default grid takes about 10 minutes on 2 cores:
# about 400M computed steps at about 1M steps/s, plus about 20 compiles; --quick halves them.
UPDATES = {"fixed": 4, "episodic": 2}
# Shapes computing more than this per update are skipped: 64 seeds x 1024 envs episodic
# (33M) would take several minutes alone, and the plain script's whole-batch gradient
# would hold about 17 GB of activations.
MAX_STEPS_PER_UPDATE = 10_000_000
IMPLEMENTATIONS = ("ours", "plain")


class Shape(NamedTuple):
    """One benchmarked shape: S seeds x N envs in one rollout mode, U updates per run."""

    mode: str
    seeds: int
    envs: int
    updates: int


class Run(NamedTuple):
    """One timed call: U updates of every seed."""

    seconds: float
    computed_steps: int
    valid_steps: int


class Runner(NamedTuple):
    """One implementation compiled for one shape; ``run()`` times a run from scratch."""

    compile_s: float
    run: Callable[[], Run]


def window(mode: str) -> int:
    """Steps each env computes per update without early exit: the plain script's count."""
    return make_env(ENV)[2].max_steps if mode == "episodic" else HORIZON


def _timed(fn: Callable, *args) -> tuple[float, dict]:
    """Seconds of one call of a compiled ``(state, metrics)`` program, and its metrics."""
    t0 = time.perf_counter()
    _, metrics = jax.block_until_ready(fn(*args))
    return time.perf_counter() - t0, metrics


def prepare_ours(shape: Shape) -> Runner:
    """Ours through the driver's ``Program``, the way ``run_training`` calls it."""
    config = TrainConfig(env=ENV, num_envs=shape.envs, rollout=shape.mode,
                         horizon=HORIZON if shape.mode == "fixed" else 0,
                         hidden_sizes=HIDDEN_SIZES, num_updates=shape.updates)
    trainer = Trainer(config)
    program = Program(trainer, batch=shape.seeds)
    keys = seed_keys(list(range(shape.seeds)))
    hp = per_run_hparams(config.hyperparams, shape.seeds)
    state = program.init(keys)
    t0 = time.perf_counter()
    fn = program.updates(shape.updates, state, hp)
    compile_s = time.perf_counter() - t0

    def run() -> Run:
        # a fresh state every run: the compiled call donates (consumes) the one it is given
        seconds, metrics = _timed(fn, jax.block_until_ready(program.init(keys)), hp)
        if "computed_steps" in metrics:  # the episodic rollout's early exit counts them
            computed = int(metrics["computed_steps"].sum())
        else:
            computed = shape.seeds * shape.updates * shape.envs * trainer.num_steps
        return Run(seconds, computed, int(metrics["env_steps"].sum()))

    return Runner(compile_s, run)


def prepare_plain(shape: Shape) -> Runner:
    """The plain script as ``jit(vmap(...))`` over the seed keys, U updates per call."""
    init, update = plain_reinforce.make_update(shape.envs, shape.mode)
    keys = seed_keys(list(range(shape.seeds)))
    init_all = jax.jit(jax.vmap(init))

    def run_updates(state):
        return jax.lax.scan(lambda s, _: update(s), state, None, length=shape.updates)

    state = init_all(keys)
    t0 = time.perf_counter()
    fn = jax.jit(jax.vmap(run_updates)).lower(state).compile()
    compile_s = time.perf_counter() - t0

    def run() -> Run:
        seconds, metrics = _timed(fn, jax.block_until_ready(init_all(keys)))
        return Run(seconds, int(metrics["computed_steps"].sum()),
                   int(metrics["valid_steps"].sum()))

    return Runner(compile_s, run)


def spread(values: list[float]) -> dict:
    """Median and range: the median resists one disturbed repeat, the range shows it."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def measure(shape: Shape, repeats: int, log: Callable[[str], None]) -> dict:
    """Compile both implementations for ``shape``, then time them interleaved, alternating
    which goes first each repeat; the raw runs and their summary."""
    runners = {"ours": prepare_ours(shape), "plain": prepare_plain(shape)}
    runs: dict[str, list[Run]] = {name: [] for name in IMPLEMENTATIONS}
    for r in range(repeats):
        for name in IMPLEMENTATIONS if r % 2 == 0 else IMPLEMENTATIONS[::-1]:
            run = runners[name].run()
            runs[name].append(run)
            log(f"{shape.mode} {shape.seeds} seeds x {shape.envs} envs, repeat {r + 1}/"
                f"{repeats}, {name}: {run.seconds:.2f} s, "
                f"{run.computed_steps / run.seconds:,.0f} computed steps/s")
    result = {**shape._asdict(), "raw": {n: [r._asdict() for r in runs[n]] for n in runs}}
    rates = {}
    for name in IMPLEMENTATIONS:
        rates[name] = {kind: [getattr(r, f"{kind}_steps") / r.seconds for r in runs[name]]
                       for kind in ("computed", "valid")}
        result[name] = {"compile_s": runners[name].compile_s,
                        **{f"{kind}_steps_per_s": spread(v) for kind, v in rates[name].items()}}
    result["ratio"] = {
        f"{kind}_steps_per_s": spread([o / p for o, p in zip(rates["ours"][kind],
                                                             rates["plain"][kind])])
        for kind in ("computed", "valid")}
    return result


def grid(args: argparse.Namespace) -> tuple[list[Shape], list[str]]:
    """The shapes to measure, and a note for each one skipped for its size."""
    shapes, skipped = [], []
    for mode in args.modes:
        updates = args.updates or max(1, UPDATES[mode] // (2 if args.quick else 1))
        steps = window(mode)
        for seeds in args.seeds:
            for envs in args.envs:
                per_update = seeds * envs * steps
                if per_update > args.max_steps_per_update:
                    skipped.append(f"skipped {mode} {seeds} seeds x {envs} envs: "
                                   f"{per_update / 1e6:.1f}M computed steps per update, over "
                                   f"--max-steps-per-update {args.max_steps_per_update:,}")
                else:
                    shapes.append(Shape(mode, seeds, envs, updates))
    return shapes, skipped


def _rate(s: dict) -> str:
    return f"{s['median'] / 1e6:.2f}M [{s['min'] / 1e6:.2f}, {s['max'] / 1e6:.2f}]"


def _ratio(s: dict) -> str:
    return f"{s['median']:.2f}x [{s['min']:.2f}, {s['max']:.2f}]"


def table(results: list[dict], limit: float) -> str:
    """The markdown table: steps/s as median [min, max] in millions."""
    lines = ["| mode | seeds x envs | U | ours computed/s | plain computed/s | ours valid/s "
             "| plain valid/s | ours/plain computed | ours/plain valid | compile s ours / plain "
             "| of compute limit ours / plain |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        o, p = r["ours"], r["plain"]
        share = " / ".join(f"{x['computed_steps_per_s']['median'] / limit:.0%}" for x in (o, p))
        lines.append(
            f"| {r['mode']} | {r['seeds']} x {r['envs']} | {r['updates']} "
            f"| {_rate(o['computed_steps_per_s'])} | {_rate(p['computed_steps_per_s'])} "
            f"| {_rate(o['valid_steps_per_s'])} | {_rate(p['valid_steps_per_s'])} "
            f"| {_ratio(r['ratio']['computed_steps_per_s'])} "
            f"| {_ratio(r['ratio']['valid_steps_per_s'])} "
            f"| {o['compile_s']:.1f} / {p['compile_s']:.1f} | {share} |")
    return "\n".join(lines)


def output_path(out: str, quick: bool) -> Path:
    """``--out``: a ``.json`` file, or a folder for ``shapes_{quick,full}.json``."""
    path = Path(out)
    return path if path.suffix == ".json" else path / f"shapes_{'quick' if quick else 'full'}.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.shapes",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="half the updates per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--envs", type=int, nargs="+", default=[48, 256, 1024])
    parser.add_argument("--modes", nargs="+", choices=["episodic", "fixed"],
                        default=["episodic", "fixed"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--updates", type=int, default=None,
                        help=f"updates per run for every mode (default {UPDATES})")
    parser.add_argument("--max-steps-per-update", type=int, default=MAX_STEPS_PER_UPDATE,
                        help="skip shapes computing more env steps per update")
    parser.add_argument("--out", default="benchmarks/results",
                        help="folder for shapes_{quick,full}.json, or a .json path")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()

    def log(message: str) -> None:
        print(f"[shapes {time.perf_counter() - started:5.0f}s] {message}", file=sys.stderr,
              flush=True)

    shapes, skipped = grid(args)
    for note in skipped:
        print(note, flush=True)
        log(note)
    gflops = matmul_gflops(args.repeats)
    limit = gflops * 1e9 / flops_per_env_step()
    log(f"compute limit {limit:,.0f} steps/s (matmul {gflops:.1f} GFLOP/s); "
        f"{len(shapes)} shapes x {args.repeats} repeats x {len(IMPLEMENTATIONS)}")
    results = [measure(shape, args.repeats, log) for shape in shapes]

    print(f"\nCartPole-v1, 2x64 tanh, fixed T={HORIZON} / episodic up to {window('episodic')} "
          f"steps; steps/s median [min, max] of {args.repeats} repeats, millions\n")
    print(table(results, limit))
    print(f"\ncompute limit: matmul {gflops:.1f} GFLOP/s / {flops_per_env_step():,} FLOP per "
          f"step = {limit:,.0f} steps/s")
    path = output_path(args.out, args.quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {
        "machine": machine(), "quick": args.quick, "args": vars(args),
        "config": {"env": ENV, "hidden_sizes": HIDDEN_SIZES, "horizon_fixed": HORIZON,
                   "episodic_max_steps": window("episodic"),
                   "plain": {"learning_rate": plain_reinforce.LEARNING_RATE,
                             "gamma": plain_reinforce.GAMMA,
                             "max_grad_norm": plain_reinforce.MAX_GRAD_NORM},
                   # each shape sets num_envs, rollout, horizon and num_updates
                   "ours_base": TrainConfig(env=ENV, hidden_sizes=HIDDEN_SIZES)},
        "matmul_gflops": gflops, "flops_per_env_step": flops_per_env_step(),
        "compute_limit_steps_per_s": limit, "skipped": skipped, "shapes": results,
        "wall_s": time.perf_counter() - started,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
