"""``python -m benchmarks.profile [--num-envs N] [--seeds S] [--rollout episodic|fixed]
[--grad-chunk-rows R]``: where a training update's time goes.

Traces a few compiled CartPole updates of S vmapped seeds (the driver's own program) with ``jax.profiler`` (a Perfetto trace, which
needs no TensorBoard), maps every XLA op back to the JAX code that emitted it through
the op's ``op_name`` metadata, and prints the time per part of the program: env step,
random numbers, policy forward in the rollout, the learner's forward and backward, Adam,
returns. Writes the table to ``benchmarks/results/profile_<N>envs_rows<R>.txt``.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax

from reinforce_jax import TrainConfig
from reinforce_jax.driver import Program, per_run_hparams, seed_keys
from reinforce_jax.train import Trainer

# First matching rule names the part; op_name paths look like
# "jit(run_updates)/while/body/.../transpose(jvp(...))/dot_general".
PARTS = [
    ("random numbers (threefry)", r"threefry|random_bits|random_split|_gumbel|_uniform"),
    ("learner backward", r"transpose\(jvp"),
    ("learner forward", r"jvp\("),
    ("Adam + clip", r"adam|scale_by|global_norm|clip|apply_updates|inject"),
    ("returns + normalize", r"discounted|normalize|rev|cumsum|cummax"),
    ("env step (gymnax)", r"step_env|step\b|reset|cartpole|/select_n"),
    ("rollout policy forward", r"policy|Dense|dot_general|tanh"),
]


def _part(op_name: str) -> str:
    for label, pattern in PARTS:
        if re.search(pattern, op_name):
            return label
    return "other"


def profile(num_envs: int, grad_chunk_rows: int, horizon: int = 64, updates: int = 4,
            seeds: int = 1, rollout: str = "fixed") -> dict:
    trainer = Trainer(TrainConfig(num_envs=num_envs, rollout=rollout, horizon=horizon,
                                  grad_chunk_rows=grad_chunk_rows))
    program = Program(trainer, seeds)
    state = program.init(seed_keys(list(range(seeds))))
    hp = per_run_hparams(trainer.config.hyperparams, seeds)
    compiled = program.updates(updates, state, hp)
    state, _ = jax.block_until_ready(compiled(state, hp))  # warm-up; the state is donated
    op_names = dict(re.findall(r"%([\w.\-]+) = .*?op_name=\"([^\"]+)\"", compiled.as_text()))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            jax.block_until_ready(compiled(state, hp))
        wall = time.perf_counter() - t0
        trace = json.load(gzip.open(next(Path(tmp).rglob("perfetto_trace.json.gz"))))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    by_part: dict[str, float] = collections.Counter()
    by_op: dict[str, float] = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") != "X" or name not in op_names:
            continue
        by_part[_part(op_names[name])] += e.get("dur", 0) / 1e6
        by_op[name] += e.get("dur", 0) / 1e6
    return {"num_envs": num_envs, "seeds": seeds, "rollout": rollout,
            "grad_chunk_rows": grad_chunk_rows, "horizon": horizon,
            "updates": updates, "traced_wall_s": wall, "by_part": dict(by_part),
            "top_ops": [(n, s, op_names[n]) for n, s in by_op.most_common(12)]}


def format_profile(p: dict) -> str:
    total = sum(p["by_part"].values())
    window = f"T={p['horizon']}" if p["rollout"] == "fixed" else "episodic"
    lines = [f"CartPole training, {p['seeds']} seeds x {p['num_envs']} envs x {window}, "
             f"grad_chunk_rows={p['grad_chunk_rows']}, {p['updates']} updates traced "
             f"({p['traced_wall_s']:.2f} s wall with the profiler on; op time summed over "
             f"threads {total:.2f} s)", "", f"{'part':<28} {'seconds':>8} {'share':>6}"]
    for part, s in sorted(p["by_part"].items(), key=lambda kv: -kv[1]):
        lines.append(f"{part:<28} {s:8.3f} {s / total:6.1%}")
    lines += ["", "largest XLA ops:"]
    for name, s, op in p["top_ops"]:
        lines.append(f"  {s:7.3f} s  {name:<28} {op[-90:]}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--num-envs", type=int, default=1024)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--rollout", choices=("episodic", "fixed"), default="fixed")
    parser.add_argument("--updates", type=int, default=4)
    parser.add_argument("--grad-chunk-rows", type=int, default=TrainConfig.grad_chunk_rows)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    text = format_profile(profile(args.num_envs, args.grad_chunk_rows, updates=args.updates,
                                  seeds=args.seeds, rollout=args.rollout))
    print(text)
    out = Path(args.out) / (f"profile_{args.seeds}seeds_{args.num_envs}envs_{args.rollout}"
                            f"_rows{args.grad_chunk_rows}.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
