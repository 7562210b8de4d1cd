"""The reference systems' runs: reproduce each original setup, then do better, over many seeds.

    python -m benchmarks.reference_runs RUN [--quick]

RUN is one of ``fourcurves`` (the FourCurves bandit), ``gamma-t`` (the gamma^t update),
``baseline`` (the LineWalk agents), ``digitmatch`` (the DigitMatch bandit), ``cartpole``
(the per-step CartPole agent), or ``all``. Each writes
``benchmarks/results/reference/RUN[_quick].json`` (numbers, commands, wall times, machine)
and a figure ``docs/reference_RUN.png``. ``--quick`` shrinks seeds and iterations so
the whole set runs in a few minutes; the README table quotes the full runs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks.throughput import machine
from reinforce_jax import TrainConfig
from reinforce_jax import distributions as D
from reinforce_jax import returns as R
from reinforce_jax.driver import final_returns, run_training, seed_keys
from reinforce_jax.envs import make_env
from reinforce_jax.faithful import per_step_updates
from reinforce_jax.io import write_json
from reinforce_jax.optim import make_optimizer, set_learning_rate
from reinforce_jax.plots import mean_with_band, pyplot
from reinforce_jax.policies import DiscretePolicy, GaussianPolicy
from reinforce_jax.report import final_scores
from reinforce_jax.rollout import reset_envs, rollout
from reinforce_jax.stats import final_return, summarize
from reinforce_jax.sweep import run_sweep
from reinforce_jax.train import make_policy

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "reference"
DOCS = ROOT / "docs"


def ci(x) -> dict:
    """``stats.summarize`` (mean, IQM, 95% bootstrap CI over finite values) plus the range."""
    x = np.asarray(x, np.float64)
    out = summarize(x)
    out["ci95"] = [out.pop("ci_low", None), out.pop("ci_high", None)]
    finite = x[np.isfinite(x)]
    out.update(min=float(finite.min()), max=float(finite.max()))
    return out


# ---------------------------------------------------------------- the FourCurves bandit
FOURCURVES_POLICY = GaussianPolicy(4, (128,), "sigmoid", log_std_min=-30.0, log_std_max=30.0)


def fourcurves_trainer(variant: str, lr: float, anneal: bool, iters: int, batch: int = 64):
    """``train(keys [S]) -> params [S]``: FourCurves with per-dimension REINFORCE.

    variant "original": weight dim d's log-density by its own reward (the original loss);
    "ours": by its per-dimension advantage, the reward minus the batch mean over the
    batch std (unbiased). Both average over batch and dimensions.
    """
    env, env_params, _ = make_env("FourCurves")
    policy = FOURCURVES_POLICY
    tx = make_optimizer("adam")

    def loss_fn(params, obs, actions, per_dim):
        (mean, log_std), _ = policy.apply(params, obs)
        # log-density per dimension: [B, 4]
        lp = D.normal_log_prob(mean[..., None], log_std[..., None], actions[..., None])
        if variant == "original":
            weight = per_dim
        else:
            weight = (per_dim - per_dim.mean(0)) / (per_dim.std(0, ddof=1) + 1e-8)
        return -(lp * jax.lax.stop_gradient(weight)).mean()

    def step(carry, i):
        params, opt_state, key = carry
        key, k_reset, k_act = jax.random.split(key, 3)
        obs, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, batch),
                                                           env_params)
        (mean, log_std), _ = policy.apply(params, obs)
        actions = D.sample_normal(k_act, mean, log_std)
        _, _, _, _, info = jax.vmap(env.step_env, in_axes=(None, 0, 0, None))(
            k_act, state, actions, env_params)
        grads = jax.grad(loss_fn)(params, obs, actions, info["reward_per_dim"])
        rate = lr * (1.0 - i / iters) if anneal else lr
        opt_state = set_learning_rate(opt_state, rate)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state, key), None

    def train(key):
        k_init, k_run = jax.random.split(key)
        params = policy.init(k_init, jnp.zeros((1, 1)))
        carry = (params, tx.init(params), k_run)
        (params, _, _), _ = jax.lax.scan(step, carry, jnp.arange(iters, dtype=jnp.float32))
        return params

    return jax.jit(jax.vmap(train))


def fourcurves_eval(params) -> tuple[np.ndarray, np.ndarray, tuple]:
    """Per seed and curve: MSE of the means over 10,000 x ~ N(0, 1), and the mean sigma."""
    x = jax.random.normal(jax.random.key(123), (10000, 1))
    y = np.asarray(jnp.concatenate([x, x**2, x**3, jnp.sin(x)], axis=1))
    (mean, log_std), _ = jax.vmap(lambda p: FOURCURVES_POLICY.apply(p, x))(params)
    mse = np.asarray(((np.asarray(mean) - y[None]) ** 2).mean(axis=1))
    sigma = np.asarray(jnp.exp(log_std).mean(axis=1))
    return mse, sigma, (np.asarray(x[:, 0]), np.asarray(mean[0]), np.asarray(jnp.exp(log_std[0])))


def fourcurves(quick: bool) -> dict:
    """The original per-dimension Gaussian REINFORCE vs our per-dimension advantage."""
    seeds = 4 if quick else 16
    iters = 3000 if quick else 50000
    make = lambda variant, lr, anneal: fourcurves_trainer(variant, lr, anneal, iters)  # noqa
    out = {"seeds": seeds, "iterations": iters, "batch": 64}
    curves_plot = {}
    for name, variant, lr, anneal in [("original setup (Adam 5e-4, reward-weighted)",
                                       "original", 5e-4, False),
                                      ("ours (per-dim normalized advantage, Adam 3e-4, anneal)",
                                       "ours", 3e-4, True)]:
        t0 = time.perf_counter()
        params = jax.block_until_ready(make(variant, lr, anneal)(seed_keys(list(range(seeds)))))
        wall = time.perf_counter() - t0
        mse, sigma, (xs0, mean0, sigma0) = fourcurves_eval(params)  # [seeds, 4] each
        out[name] = {"mse_per_curve": {c: ci(mse[:, i]) for i, c in
                                       enumerate(["x", "x^2", "x^3", "sin x"])},
                     "sigma_per_curve": {c: ci(sigma[:, i]) for i, c in
                                         enumerate(["x", "x^2", "x^3", "sin x"])},
                     "wall_seconds_incl_compile": wall}
        order = np.argsort(xs0)
        curves_plot[name] = (xs0[order], mean0[order], sigma0[order])
        print(f"{name}: MSE per curve (mean over {seeds} seeds) "
              + ", ".join(f"{c} {v['mean']:.4f}" for c, v in out[name]["mse_per_curve"].items())
              + "; sigma " + ", ".join(f"{v['mean']:.3f}" for v in
                                       out[name]["sigma_per_curve"].values())
              + f"; {wall:.1f}s")
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), dpi=110)
    xs = next(iter(curves_plot.values()))[0]
    truth = [xs, xs**2, xs**3, np.sin(xs)]
    for i, (ax, c) in enumerate(zip(axes, ["x", "x^2", "x^3", "sin x"])):
        ax.plot(xs, truth[i], "k", lw=1, label="target")
        for (name, (xv, m, s)), col in zip(curves_plot.items(), ["tab:red", "tab:blue"]):
            ax.plot(xv, m[:, i], color=col, lw=1.2, label=name.split(" (")[0])
            ax.fill_between(xv, m[:, i] - s[:, i], m[:, i] + s[:, i], color=col, alpha=0.15)
        ax.set_title(f"y = {c} (seed 0; band = ±σ)")
        ax.set_xlim(-3, 3)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(DOCS / "reference_fourcurves.png")
    plt.close(fig)
    return out


# ---------------------------------------------------------------- the gamma^t update
def gamma_t(quick: bool) -> dict:
    seeds = 16 if quick else 256
    base = TrainConfig(num_envs=16, num_updates=40 if quick else 100)
    out_dir = ROOT / "runs" / f"reference-gamma-t{'-quick' if quick else ''}"
    t0 = time.perf_counter()
    res = run_sweep(base, {"gamma_t_weighting": [False, True]}, seeds, out_dir, overwrite=True,
                    progress=False)
    wall = time.perf_counter() - t0
    final = final_scores(res)
    out = {"seeds": seeds, "config": base, "wall_seconds": wall, "compiles": res.compiles,
           "unweighted (common practice)": ci(final[0]), "gamma^t weighted (Sutton-Barto)":
           ci(final[1]), "sweep_dir": str(out_dir.relative_to(ROOT))}
    _curve_plot({"unweighted": res.metrics["episode_return"][0],
                 "γ^t-weighted": res.metrics["episode_return"][1]},
                f"CartPole-v1, {seeds} seeds: γ^t weighting (Sutton & Barto) vs unweighted",
                DOCS / "reference_gamma_t.png")
    for k in ("unweighted (common practice)", "gamma^t weighted (Sutton-Barto)"):
        print(f"{k}: final return {out[k]['mean']:.1f} CI {out[k]['ci95']}")
    return out


def _curve_plot(curves: dict, title: str, path: Path, ylabel: str = "episode return"):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for name, c in curves.items():
        c = np.asarray(c, np.float64)
        c = c[np.all(np.isfinite(c), axis=1)]
        mean_with_band(ax, np.arange(1, c.shape[1] + 1), c, lw=1.8, num_resamples=500,
                       label=f"{name} ({c.shape[0]} seeds)")
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


# ---------------------------------------------------------------- the LineWalk agents
def baseline(quick: bool) -> dict:
    out = {}
    seeds = 64 if quick else 1000
    walk = TrainConfig(env="LineWalk", num_envs=1, num_updates=400, hidden_sizes=(128, 128),
                       learning_rate=3e-4, anneal_lr=False, normalize_returns="batch",
                       max_grad_norm=0.5, gamma=0.99, vf_coef=0.5)
    t0 = time.perf_counter()
    # One env per run makes every step a matrix-vector product per run, so the speed
    # is set by reading the runs' weights: 64 runs of 2x128 (4.4 MB) stay in L3 cache,
    # 1000 at once (68 MB) stream from memory every step and run many times slower.
    res = run_sweep(walk, {"baseline": ["none", "shared"]}, seeds,
                    ROOT / "runs" / f"reference-baseline-walk{'-quick' if quick else ''}",
                    max_runs_per_chunk=64, overwrite=True, progress=False)
    walk_wall = time.perf_counter() - t0
    last100 = final_scores(res, window=100)
    out["LineWalk"] = {"seeds": seeds, "config": walk, "wall_seconds": walk_wall,
                       "metric": "mean return over the last 100 episodes (as the original)",
                       "no baseline": ci(last100[0]), "with baseline": ci(last100[1]),
                       "fraction of seeds reaching +1 reliably (last-100 mean > 1.0)": {
                           "no baseline": float(np.nanmean(last100[0] > 1.0)),
                           "with baseline": float(np.nanmean(last100[1] > 1.0))}}
    _curve_plot({"no baseline": res.metrics["episode_return"][0],
                 "with baseline": res.metrics["episode_return"][1]},
                f"LineWalk (original setup), {seeds} seeds", DOCS / "reference_baseline_walk.png")
    cp_seeds = 16 if quick else 64
    cart = TrainConfig(num_envs=16, num_updates=60 if quick else 150)
    t0 = time.perf_counter()
    res = run_sweep(cart, {"baseline": ["none", "shared"]}, cp_seeds,
                    ROOT / "runs" / f"reference-baseline-cartpole{'-quick' if quick else ''}",
                    overwrite=True, progress=False)
    final = final_scores(res)
    out["CartPole-v1"] = {"seeds": cp_seeds, "config": cart,
                          "wall_seconds": time.perf_counter() - t0,
                          "no baseline": ci(final[0]), "with baseline": ci(final[1])}
    _curve_plot({"no baseline": res.metrics["episode_return"][0],
                 "with baseline": res.metrics["episode_return"][1]},
                f"CartPole-v1, {cp_seeds} seeds: baseline vs none",
                DOCS / "reference_baseline_cartpole.png")
    for env in ("LineWalk", "CartPole-v1"):
        print(env, {k: (v["mean"], v["ci95"]) for k, v in out[env].items()
                    if isinstance(v, dict) and "mean" in v})
    return out


# ---------------------------------------------------------------- the DigitMatch bandit
def _exact(result, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: the probability of the exact answer (mean over inputs) and greedy accuracy."""
    spec = make_env(cfg.env)[2]
    policy = make_policy(cfg, spec)
    n = spec.action_dim
    i = jnp.arange(n)
    obs = jax.nn.one_hot(i, n) if cfg.env.endswith("onehot") else i[:, None].astype(jnp.float32)
    logits, _ = jax.vmap(lambda p: policy.apply(p, obs))(result.params)
    probs = jax.nn.softmax(logits, -1)
    p_exact = np.asarray(probs[:, i, i].mean(-1))
    greedy = np.asarray((logits.argmax(-1) == i).mean(-1))
    return p_exact, greedy


def digitmatch(quick: bool) -> dict:
    out = {}
    original_seeds, our_seeds = (4, 16) if quick else (16, 64)
    for n in (10, 100):
        original = TrainConfig(env=f"DigitMatch-{n}", num_envs=50,
                               num_updates=2000 if quick else 10001, hidden_sizes=(128,),
                               activation="relu", learning_rate=1e-3, anneal_lr=False,
                               normalize_returns="none", ent_coef=1e-4,
                               max_grad_norm=float("inf"))
        if n == 10:
            ours = TrainConfig(env="DigitMatch-10-onehot", num_envs=256, num_updates=300,
                               hidden_sizes=(), learning_rate=0.1, normalize_returns="batch",
                               max_grad_norm=float("inf"))
        else:  # why each setting is needed: README, "Why the DigitMatch bandit fails"
            ours = TrainConfig(env="DigitMatch-100-onehot", num_envs=4096, group_size=32,
                               baseline="group", num_updates=4000, hidden_sizes=(),
                               head_bias=False, learning_rate=0.1, ent_coef=0.2,
                               normalize_returns="none", max_grad_norm=float("inf"))
        n_ours = our_seeds if n == 10 or not quick else 4
        for label, cfg, seeds in (("original setup", original, original_seeds),
                                  ("ours", ours, n_ours)):
            res = run_training(cfg, num_seeds=seeds, chunk_updates=100 if cfg.num_updates > 1000
                               else 50, progress=False)
            p_exact, greedy = _exact(res, cfg)
            out[f"N={n} {label}"] = {
                "config": cfg, "seeds": seeds,
                "p_exact (expected share of exact sampled answers)": ci(p_exact),
                "greedy accuracy": ci(greedy),
                "final mean reward": ci(final_returns(res)),
                "wall_seconds": res.run_seconds + res.compile_seconds}
            print(f"DigitMatch-{n} {label}: P(exact) {p_exact.mean():.3f} "
                  f"[{p_exact.min():.3f}..{p_exact.max():.3f}], greedy {greedy.mean():.3f}, "
                  f"{res.run_seconds + res.compile_seconds:.1f}s")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    labels = [k for k in out]
    vals = [out[k]["p_exact (expected share of exact sampled answers)"]["mean"] for k in labels]
    errs = np.array([[v - out[k]["p_exact (expected share of exact sampled answers)"]["ci95"][0],
                      out[k]["p_exact (expected share of exact sampled answers)"]["ci95"][1] - v]
                     for k, v in zip(labels, vals)]).T
    ax.bar(labels, vals, yerr=errs, color=["tab:red", "tab:blue"] * 2, capsize=4)
    ax.axhline(0.99, color="k", ls=":", lw=1)
    ax.axhline(0.95, color="gray", ls=":", lw=1)
    ax.set_ylabel("P(exact answer), mean over inputs")
    ax.set_title("DigitMatch: original setup vs ours, 95% CI over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(DOCS / "reference_digitmatch.png")
    plt.close(fig)
    return out


# ---------------------------------------------------------------- the per-step CartPole agent
def cartpole(quick: bool) -> dict:
    out = {}
    env, env_params, spec = make_env("CartPole-v1")
    seeds = 4 if quick else 16
    episodes = 300 if quick else 5000
    policy = DiscretePolicy(2, (), "tanh")
    tx = make_optimizer("adam")

    def episode(carry, _):
        params, opt_state, key = carry
        key, k_reset, k_roll = jax.random.split(key, 3)
        start = reset_envs(k_reset, env, env_params, 1)
        logits_fn = lambda obs: policy.apply(params, obs)[0]  # noqa: E731
        _, traj = rollout(k_roll, logits_fn, env, env_params, start, spec.max_steps, True, False)
        G = R.discounted_returns(traj.reward[:, 0], (traj.terminated | traj.truncated)[:, 0],
                                 0.99)
        params, opt_state = per_step_updates(
            lambda p, o: policy.apply(p, o)[0], tx, params, opt_state, traj.obs[:, 0],
            traj.action[:, 0], G, mask=traj.valid[:, 0])
        return (params, opt_state, key), jnp.sum(traj.reward)

    def train(key):
        k_init, k_run = jax.random.split(key)
        params = policy.init(k_init, jnp.zeros((1, 4)))
        opt_state = set_learning_rate(tx.init(params), 1e-3)
        _, returns = jax.lax.scan(episode, (params, opt_state, k_run), None, length=episodes)
        return returns

    t0 = time.perf_counter()
    returns = np.asarray(jax.block_until_ready(jax.jit(jax.vmap(train))(
        seed_keys(list(range(seeds))))))
    wall = time.perf_counter() - t0
    last100 = final_return(returns, window=100)
    out["faithful per-step mode"] = {
        "seeds": seeds, "episodes": episodes, "wall_seconds_incl_compile": wall,
        "last-100-episode mean return": ci(last100),
        "seeds >= 475": int((last100 >= 475).sum())}
    print(f"faithful: last-100 mean {last100.mean():.1f} ({(last100 >= 475).sum()}/{seeds} "
          f">= 475), {wall:.1f}s")
    # the fastest vectorized solve we found: every seed's final return >= 475
    fast = TrainConfig(num_envs=32, num_updates=60, learning_rate=1e-2)
    t0 = time.perf_counter()
    res = run_training(fast, num_seeds=16, chunk_updates=60, progress=False)
    wall = time.perf_counter() - t0
    final = final_returns(res)
    out["fastest vectorized solve"] = {
        "config": fast, "seeds": 16, "wall_seconds_incl_compile": wall,
        "compile_seconds": res.compile_seconds, "run_seconds": res.run_seconds,
        "final return": ci(final), "seeds >= 475": int((final >= 475).sum())}
    print(f"vectorized: final {final.mean():.1f} (min {final.min():.1f}, "
          f"{(final >= 475).sum()}/16 >= 475) in {wall:.1f}s wall "
          f"({res.compile_seconds:.1f}s compile)")
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=110)
    k = max(1, episodes // 100)
    smooth = returns[:, : episodes // k * k].reshape(seeds, -1, k).mean(-1)
    axes[0].plot(np.arange(smooth.shape[1]) * k, smooth.T, lw=0.8)
    axes[0].set_title(f"faithful per-step mode: per-step Adam, {seeds} seeds", fontsize=9)
    axes[0].set_xlabel("episode")
    axes[0].set_ylabel("return")
    axes[1].plot(res.metrics["episode_return"].T, lw=0.8)
    axes[1].set_title(f"vectorized: {fast.num_envs} episodes/update, 16 seeds, "
                      f"{wall:.1f}s incl. compile", fontsize=9)
    axes[1].set_xlabel("update")
    for ax in axes:
        ax.axhline(475, color="k", ls=":", lw=1)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(DOCS / "reference_cartpole.png")
    plt.close(fig)
    return out


RUNS = {"fourcurves": fourcurves, "gamma-t": gamma_t, "baseline": baseline,
        "digitmatch": digitmatch, "cartpole": cartpole}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", choices=[*RUNS, "all"])
    parser.add_argument("--quick", action="store_true", help="few seeds, short runs")
    args = parser.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    DOCS.mkdir(exist_ok=True)
    for name in (RUNS if args.run == "all" else [args.run]):
        t0 = time.perf_counter()
        result = RUNS[name](args.quick)
        result["total_wall_seconds"] = time.perf_counter() - t0
        result["machine"] = machine()
        result["command"] = f"python -m benchmarks.reference_runs {name}" + (
            " --quick" if args.quick else "")
        write_json(RESULTS / f"{name}{'_quick' if args.quick else ''}.json", result)
        print(f"[{name}] done in {result['total_wall_seconds']:.1f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
