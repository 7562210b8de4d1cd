"""``python -m benchmarks.throughput [--quick]``: CartPole-v1 throughput, ours vs torch.

Measures, in one process: env-only, rollout-only and full training throughput of our
2x64 tanh REINFORCE (fixed-horizon mode) as num_envs grows; training as vmapped seeds
grow; time per update vs horizon; compiled memory; a matmul roofline; and the three
torch references. Compile time is reported apart; every timer stops after
``block_until_ready``; each number is the median of several repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from reinforce_jax import HyperParams, TrainConfig
from reinforce_jax.driver import seed_keys
from reinforce_jax.rollout import reset_envs, rollout
from reinforce_jax.train import Trainer, compute_targets

HORIZON = 64
UPDATES_PER_CALL = 4


def _time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _config(num_envs: int, horizon: int = HORIZON,
            grad_chunk_rows: int | None = None) -> TrainConfig:
    cfg = TrainConfig(num_envs=num_envs, rollout="fixed", horizon=horizon,
                      hidden_sizes=(64, 64))
    return cfg if grad_chunk_rows is None else cfg.replace(grad_chunk_rows=grad_chunk_rows)


def _hparams(cfg: TrainConfig) -> HyperParams:
    """The config's hyper-parameters as traced float32 scalars (shared by every seed)."""
    return HyperParams(*(jnp.float32(v) for v in cfg.hyperparams))


def _memory_mb(compiled) -> float | None:
    try:
        m = compiled.memory_analysis()
        return (m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes) / 2**20
    except Exception:  # not every backend reports it
        return None


def bench_train(num_envs: int, seeds: int, horizon: int, repeats: int,
                grad_chunk_rows: int | None = None) -> dict:
    cfg = _config(num_envs, horizon, grad_chunk_rows)
    trainer = Trainer(cfg)
    hp = _hparams(cfg)
    state = jax.jit(jax.vmap(trainer.init))(seed_keys(list(range(seeds))))
    fn = jax.jit(jax.vmap(trainer.run_updates, in_axes=(0, None, None)), static_argnums=2)
    t0 = time.perf_counter()
    compiled = fn.lower(state, hp, UPDATES_PER_CALL).compile()
    compile_s = time.perf_counter() - t0
    seconds = _time(lambda: compiled(state, hp), repeats)
    steps = seeds * num_envs * horizon * UPDATES_PER_CALL
    return {"num_envs": num_envs, "seeds": seeds, "horizon": horizon,
            "grad_chunk_rows": cfg.grad_chunk_rows, "steps_per_s": steps / seconds,
            "seconds_per_update": seconds / UPDATES_PER_CALL,
            "compile_s": compile_s, "memory_mb": _memory_mb(compiled)}


def bench_rollout(num_envs: int, repeats: int, with_policy: bool) -> dict:
    trainer = Trainer(_config(num_envs))
    params = trainer.policy.init(jax.random.key(0), jnp.zeros((1, 4)))
    carry = reset_envs(jax.random.key(1), trainer.env, trainer.env_params, num_envs)
    if with_policy:
        policy_fn = lambda obs: trainer.policy.apply(params, obs)[0]  # noqa: E731
    else:  # env only: uniform logits, no network
        policy_fn = lambda obs: jnp.zeros((obs.shape[0], 2))  # noqa: E731

    @jax.jit
    def go(key, carry):
        return rollout(key, policy_fn, trainer.env, trainer.env_params, carry, HORIZON, True,
                       True)[1].reward

    key = jax.random.key(2)
    go(key, carry).block_until_ready()
    seconds = _time(lambda: go(key, carry), repeats)
    return {"num_envs": num_envs, "steps_per_s": num_envs * HORIZON / seconds}


def bench_learner(num_envs: int, repeats: int, grad_chunk_rows: int | None = None) -> dict:
    """The learner alone on one stored rollout: loss, backward, clip and Adam."""
    cfg = _config(num_envs, grad_chunk_rows=grad_chunk_rows)
    trainer = Trainer(cfg)
    state = jax.jit(trainer.init)(jax.random.key(0))
    hp = _hparams(cfg)
    policy_fn = lambda obs: trainer.policy.apply(state.params, obs)[0]  # noqa: E731
    _, traj = jax.jit(lambda k: rollout(k, policy_fn, trainer.env, trainer.env_params,
                                        state.env, HORIZON, True, True))(jax.random.key(1))
    G, mask, weights = compute_targets(cfg, traj, hp.gamma, None, None)

    @jax.jit
    def learn(params, opt_state, lr_scale):  # the Trainer's own learning step
        return trainer.learn(params, opt_state, hp, lr_scale, traj.obs, traj.action, G, mask,
                             weights)[:2]

    lr_scale = jnp.float32(1.0)  # the anneal's factor at the first update

    jax.block_until_ready(learn(state.params, state.opt_state, lr_scale))
    seconds = _time(lambda: learn(state.params, state.opt_state, lr_scale), repeats)
    return {"num_envs": num_envs, "grad_chunk_rows": cfg.grad_chunk_rows,
            "steps_per_s": num_envs * HORIZON / seconds}


def capacity(num_envs: int, seed_grid: list[int]) -> dict:
    """Compile (without running) training for growing seed counts and read XLA's memory
    figure; the largest seeds x num_envs under the device's free memory fits."""
    from reinforce_jax.sweep import available_memory_bytes

    free_mb = available_memory_bytes() / 2**20
    trainer = Trainer(_config(num_envs))
    hp = _hparams(trainer.config)
    fn = jax.jit(jax.vmap(trainer.run_updates, in_axes=(0, None, None)), static_argnums=2)
    rows = []
    for seeds in seed_grid:
        state = jax.eval_shape(jax.vmap(trainer.init), seed_keys(list(range(seeds))))
        memory = _memory_mb(fn.lower(state, hp, UPDATES_PER_CALL).compile())
        rows.append({"seeds": seeds, "num_envs": num_envs, "memory_mb": memory,
                     "fits": memory is not None and memory < free_mb})
    fitting = [r for r in rows if r["fits"]]
    return {"free_memory_mb": free_mb, "rows": rows,
            "largest_fitting": max(fitting, key=lambda r: r["seeds"]) if fitting else None}


def matmul_gflops(repeats: int) -> float:
    """Peak rate of the network's own matmul shape: the best of several timed runs of a
    65536x64 @ 64x64 tanh chain (the best, not the median, estimates the ceiling)."""
    a = jax.random.normal(jax.random.key(0), (65536, 64))
    b = jax.random.normal(jax.random.key(1), (64, 64))
    f = jax.jit(lambda a, b: jnp.tanh(a @ b) @ b)
    f(a, b).block_until_ready()
    times = []
    for _ in range(repeats * 20):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        times.append(time.perf_counter() - t0)
    return 2 * 2 * 65536 * 64 * 64 / min(times) / 1e9


def flops_per_env_step() -> int:
    """FLOP per env step: the rollout's forward, the learner's forward, and its backward
    (weight gradients of every layer, input gradients of all but the first)."""
    layers = [(4, 64), (64, 64), (64, 2)]
    forward = sum(i * o for i, o in layers)
    backward = sum(i * o for i, o in layers) + sum(i * o for i, o in layers[1:])
    return 2 * (2 * forward + backward)


def slope(xs, ys) -> float:
    """Exponent b of time ~ x^b from a log-log least-squares fit."""
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def machine() -> dict:
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "jax": jax.__version__,
            "torch": torch.__version__, "device": str(jax.devices()[0]),
            "backend": jax.default_backend()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.throughput", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small grid, under 3 minutes")
    parser.add_argument("--out", default="benchmarks/results", help="folder for JSON and PNG")
    args = parser.parse_args(argv)
    quick = args.quick
    repeats = 3 if quick else 5
    env_grid = [1, 16, 256, 1024, 4096] + ([] if quick else [16384, 65536])
    seed_grid = [1, 4, 16] + ([] if quick else [64])
    horizon_grid = [16, 64] + ([] if quick else [256])
    torch_seconds = 3.0 if quick else 10.0
    started = time.perf_counter()

    from benchmarks import torch_refs

    print("torch references (1 thread) ...", flush=True)
    torch_rates = torch_refs.run_all(torch_seconds)
    print("jax: env only / rollout / training over num_envs ...", flush=True)
    envs = [bench_rollout(n, repeats, False) for n in env_grid]
    rollouts = [bench_rollout(n, repeats, True) for n in env_grid]
    learners = [bench_learner(n, repeats) for n in env_grid]
    trains = []
    for n in env_grid:
        try:
            trains.append(bench_train(n, 1, HORIZON, repeats))
        except Exception as err:  # out of memory: record the limit and stop growing
            print(f"num_envs={n}: {type(err).__name__}; largest that fits is the previous")
            break
    print("jax: training over seeds and horizons ...", flush=True)
    seeds = [bench_train(256, s, HORIZON, repeats) for s in seed_grid]
    horizons = [bench_train(1024, 1, T, repeats) for T in horizon_grid]
    print("jax: the learner on the whole batch at once (grad_chunk_rows=0) ...", flush=True)
    whole = [bench_train(n, 1, HORIZON, repeats, grad_chunk_rows=0) for n in (1024, 4096)]
    print("jax: memory of larger seeds x envs (compiled, not run) ...", flush=True)
    fits = capacity(4096, [1, 16, 256] if quick else [1, 16, 64, 256, 1024, 4096])
    gflops = matmul_gflops(repeats)

    best = max((t for t in trains if t["num_envs"] >= 1024), key=lambda t: t["steps_per_s"],
               default=max(trains, key=lambda t: t["steps_per_s"]))
    limit = gflops * 1e9 / flops_per_env_step()
    result = {
        "machine": machine(), "quick": quick,
        "env_only": envs, "rollout": rollouts, "learner": learners, "train_by_envs": trains,
        "train_whole_batch_gradient": whole, "capacity": fits,
        "train_by_seeds": seeds, "train_by_horizon": horizons,
        "torch": torch_rates, "matmul_gflops": gflops,
        "flops_per_env_step": flops_per_env_step(), "compute_limit_steps_per_s": limit,
        "best_train": best,
        "ratios": {name: best["steps_per_s"] / rate for name, rate in torch_rates.items()},
        "slopes": {
            "time_vs_num_envs": slope([t["num_envs"] for t in trains[2:]],
                                      [t["seconds_per_update"] for t in trains[2:]]),
            "time_vs_seeds": slope([s["seeds"] for s in seeds],
                                   [s["seconds_per_update"] for s in seeds]),
            "time_vs_horizon": slope([h["horizon"] for h in horizons],
                                     [h["seconds_per_update"] for h in horizons]),
        },
    }
    result["wall_s"] = time.perf_counter() - started
    report(result)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = "quick" if quick else "full"
    (out / f"throughput_{tag}.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / f"throughput_{tag}.png")
    print(f"wrote {out}/throughput_{tag}.json and .png")
    return 0


def report(r: dict) -> None:
    m = r["machine"]
    print(f"\nmachine: {m['cpu']} ({m['cores']} cores), jax {m['jax']} on {m['device']}, "
          f"torch {m['torch']} (threads as named per reference)")
    print(f"\n{'num_envs':>9} {'env only':>12} {'rollout':>12} {'learner':>12} {'train':>12}"
          f" {'compile s':>9} {'memory MB':>9}   (env steps/s)")
    for e, ro, le, t in zip(r["env_only"], r["rollout"], r["learner"],
                            r["train_by_envs"] + [None] * 9):
        train = f"{t['steps_per_s']:12,.0f} {t['compile_s']:9.1f} {t['memory_mb'] or 0:9.1f}" \
            if t else f"{'-':>12}"
        print(f"{e['num_envs']:>9} {e['steps_per_s']:12,.0f} {ro['steps_per_s']:12,.0f} "
              f"{le['steps_per_s']:12,.0f} {train}")
    by_n = {t["num_envs"]: t for t in r["train_by_envs"]}
    for w in r["train_whole_batch_gradient"]:
        if w["num_envs"] in by_n:
            t = by_n[w["num_envs"]]
            print(f"learner slices of {t['grad_chunk_rows']} rows vs the whole batch at once, "
                  f"{w['num_envs']} envs: {t['steps_per_s']:,.0f} vs {w['steps_per_s']:,.0f}"
                  f" steps/s ({t['steps_per_s'] / w['steps_per_s']:.2f}x)")
    print(f"\n{'seeds (256 envs each)':>22} {'train steps/s':>14} {'s/update':>9}")
    for s in r["train_by_seeds"]:
        print(f"{s['seeds']:>22} {s['steps_per_s']:14,.0f} {s['seconds_per_update']:9.4f}")
    print(f"\n{'horizon (1024 envs)':>22} {'train steps/s':>14} {'s/update':>9}")
    for h in r["train_by_horizon"]:
        print(f"{h['horizon']:>22} {h['steps_per_s']:14,.0f} {h['seconds_per_update']:9.4f}")
    cap = r["capacity"]
    print(f"\nmemory, compiled, {cap['rows'][0]['num_envs']} envs per seed "
          f"(free: {cap['free_memory_mb']:,.0f} MB): " + ", ".join(
              f"{c['seeds']} seeds {c['memory_mb']:,.0f} MB" for c in cap["rows"]))
    big = cap["largest_fitting"]
    if big:
        print(f"largest that fits: {big['seeds']} seeds x {big['num_envs']} envs")
    best = r["best_train"]
    print(f"\nours: {best['steps_per_s']:,.0f} env steps/s training at {best['num_envs']} envs")
    for name, rate in r["torch"].items():
        print(f"  vs {name}: {rate:,.0f} steps/s -> ratio {r['ratios'][name]:,.1f}x")
    fastest = max(rate for name, rate in r["torch"].items() if "batched" in name)
    loop = next(rate for name, rate in r["torch"].items() if "per-step" in name)
    ours = best["steps_per_s"]
    for text, value, target in (("steps/s at >= 1024 envs", ours, 1e6),
                                ("x the fastest batched torch", ours / fastest, 15),
                                ("x the per-step CartPole loop", ours / loop, 500)):
        verdict = "met" if value >= target else "NOT met"
        print(f"target {target:,.0f} {text}: {value:,.1f} ({verdict})")
    print(f"limit: matmul {r['matmul_gflops']:.1f} GFLOP/s / {r['flops_per_env_step']:,} FLOP per "
          f"step = {r['compute_limit_steps_per_s']:,.0f} steps/s; we reach "
          f"{best['steps_per_s'] / r['compute_limit_steps_per_s']:.0%} of it; env-only peak "
          f"{max(e['steps_per_s'] for e in r['env_only']):,.0f} steps/s")
    s = r["slopes"]
    print(f"cost growth (time per update ~ x^b): num_envs b={s['time_vs_num_envs']:.2f}, "
          f"seeds b={s['time_vs_seeds']:.2f}, horizon b={s['time_vs_horizon']:.2f}")
    print(f"benchmark wall time {r['wall_s']:.0f}s")


def plot(r: dict, path: Path) -> None:
    from reinforce_jax.plots import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    ax = axes[0]
    for key, label in (("env_only", "env only"), ("rollout", "rollout (policy + env)"),
                       ("learner", "learner only (loss + backward + Adam)"),
                       ("train_by_envs", "training (rollout + loss + update)")):
        xs = [p["num_envs"] for p in r[key]]
        ax.plot(xs, [p["steps_per_s"] for p in r[key]], "o-", label=label)
    for i, (name, rate) in enumerate(r["torch"].items()):
        ax.axhline(rate, ls="--", lw=1, color="gray")
        ax.text(1 if i % 2 == 0 else 300, rate * 1.15, name, fontsize=7, color="gray")
    ax.set(xscale="log", yscale="log", xlabel="num_envs (1 seed)", ylabel="env steps / s",
           title=f"CartPole-v1 throughput, {r['machine']['cpu']}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    ax = axes[1]
    for key, xkey, label in (("train_by_envs", "num_envs", "vs num_envs (T=64)"),
                             ("train_by_seeds", "seeds", "vs seeds (256 envs)"),
                             ("train_by_horizon", "horizon", "vs horizon T (1024 envs)")):
        ax.plot([p[xkey] for p in r[key]], [p["seconds_per_update"] for p in r[key]], "o-",
                label=f"{label}, slope {r['slopes'][f'time_vs_{xkey}']:.2f}")
    ax.set(xscale="log", yscale="log", xlabel="size", ylabel="seconds per update",
           title="cost growth")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
