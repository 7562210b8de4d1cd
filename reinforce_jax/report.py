"""Sweep reports: a table of every configuration over its seeds, and pictures.

Per configuration: final return (mean episode return over the last ``window`` updates)
as mean and IQM with 95% stratified-bootstrap CIs, the probability of improvement
against a reference configuration, and how many runs diverged (excluded, counted).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np

from reinforce_jax.plots import pyplot
from reinforce_jax.scores import aggregate, normalize, rliable_layout
from reinforce_jax.scores import reference as reference_scores
from reinforce_jax.stats import (
    FINAL_WINDOW,
    final_return,
    iqm,
    probability_of_improvement,
    stratified_bootstrap_ci,
)
from reinforce_jax.sweep import SweepResult, collect, format_value

METRICS = ("iqm", "mean")


def usable_runs(result: SweepResult) -> np.ndarray:
    """bool [points, seeds]: the run finished and did not diverge."""
    ok = result.diverged_at < 0
    return ok if result.finished is None else ok & result.finished


def final_scores(result: SweepResult, window: int = FINAL_WINDOW) -> np.ndarray:
    """[points, seeds] final returns (``stats.final_return``); NaN for a diverged or
    unfinished run."""
    curves = result.metrics["episode_return"]
    out = np.stack([final_return(curves[p], point.config.num_updates, window)
                    for p, point in enumerate(result.plan.points)])
    return np.where(usable_runs(result), out, np.nan)


def sweep_table(result: SweepResult, metric: str = "iqm", window: int = FINAL_WINDOW,
                reference: int | None = None) -> list[dict]:
    """One row per configuration, sorted best first by ``metric``."""
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}; allowed: {', '.join(METRICS)}")
    scores = final_scores(result, window)
    rows = []
    for p, point in enumerate(result.plan.points):
        x = scores[p][np.isfinite(scores[p])]
        row = {"point": p, "label": point.label, "values": point.values, "n": int(x.size),
               "diverged": int((result.diverged_at[p] >= 0).sum()),
               "unfinished": int((~result.finished[p]).sum()) if result.finished is not None
               else 0, "scores": x}
        if x.size:
            row["mean"], row["iqm"] = float(x.mean()), float(iqm(x))
            row["mean_ci"] = stratified_bootstrap_ci([x], np.mean)
            row["iqm_ci"] = stratified_bootstrap_ci([x], iqm)
        rows.append(row)
    rows.sort(key=lambda r: -r.get(metric, -math.inf))
    ref = rows[0] if reference is None else next(
        (r for r in rows if r["point"] == reference), None)
    if ref is None:
        raise ValueError(f"reference={reference!r}; allowed: a configuration index "
                         f"0..{len(rows) - 1}")
    for r in rows:
        if r["n"] and ref["n"]:
            r["poi"] = probability_of_improvement(r["scores"], ref["scores"])
    return rows


def format_table(rows: list[dict], metric: str, reference_label: str) -> str:
    lines = [f"{'#':>3}  {'configuration':<36} {'n':>4} {'div':>4}  {'IQM [95% CI]':>26}  "
             f"{'mean [95% CI]':>26}  P(> ref) [95% CI]"]
    for r in rows:
        if r["n"] == 0:
            lines.append(f"{r['point']:>3}  {r['label']:<36} {0:>4} {r['diverged']:>4}  "
                         "no finished finite runs")
            continue
        iq, mc = r["iqm_ci"], r["mean_ci"]
        poi = r.get("poi")
        poi_s = f"{poi[0]:.2f} [{poi[1]:.2f}, {poi[2]:.2f}]" if poi else "-"
        lines.append(f"{r['point']:>3}  {r['label']:<36} {r['n']:>4} {r['diverged']:>4}  "
                     f"{r['iqm']:>8.1f} [{iq[0]:>7.1f}, {iq[1]:>7.1f}]  "
                     f"{r['mean']:>8.1f} [{mc[0]:>7.1f}, {mc[1]:>7.1f}]  {poi_s}")
    unfinished = sum(r["unfinished"] for r in rows)
    lines.append(f"sorted by {metric}; final return = mean episode return over the last updates;"
                 f" CIs: stratified bootstrap over seeds; ref = {reference_label}")
    div = sum(r["diverged"] for r in rows)
    if div:
        lines.append(f"{div} diverged run(s) excluded from the statistics (column div)")
    if unfinished:
        lines.append(f"{unfinished} run(s) not finished yet (resume the sweep to finish them)")
    return "\n".join(lines)


def plot_sweep_curves(result: SweepResult, path: Path, order: list[int], top: int = 10) -> None:
    """Learning curves (mean over finite runs) with 95% bootstrap bands, best ``top``,
    against cumulative env steps (``sweep_curves_figure``); written to ``path``."""
    fig = sweep_curves_figure(result, order, top)
    fig.savefig(path)
    pyplot().close(fig)


def sweep_curves_figure(result: SweepResult, order: list[int], top: int = 10):
    """The figure ``plot_sweep_curves`` saves. Each configuration's x is the mean over its
    finite runs of their cumulative env steps, so configurations with different
    num_envs or horizon line up by the experience they used."""
    plt = pyplot()
    from matplotlib.ticker import EngFormatter

    from reinforce_jax.plots import ENV_STEPS_LABEL, cumulative_env_steps, mean_with_band

    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=120)
    curves = result.metrics["episode_return"]
    colors = plt.get_cmap("tab10")
    usable = usable_runs(result)
    for c, p in enumerate(order[:top]):
        u = result.plan.points[p].config.num_updates
        ok = usable[p]
        if not ok.any():
            continue
        good = curves[p, ok, :u]
        x = cumulative_env_steps(result.metrics["env_steps"][p, ok, :u])
        mean_with_band(ax, x, good, color=colors(c % 10), alpha=0.2,
                       label=f"{result.plan.points[p].label} ({good.shape[0]} seeds)")
    ax.set_xlabel(ENV_STEPS_LABEL + ", mean over a configuration's runs")
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 1.5M, not an offset "1e6"
    ax.set_ylabel("episode return")
    ax.set_title(f"sweep: best {min(top, len(order))} configurations, mean and 95% CI")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # nothing is drawn when every run diverged
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_sensitivity(result: SweepResult, rows: list[dict], out_dir: Path,
                     metric: str = "iqm") -> list[Path]:
    """Per swept field with several values: ``metric`` and its CI against the value, one
    line per combination of the other swept fields (at most 8)."""
    plt = pyplot()
    by_point = {r["point"]: r for r in rows}
    points = result.plan.points
    fields = [k for k in points[0].values if len({format_value(p.values[k]) for p in points}) > 1]
    written = []
    for field in fields:
        others = [k for k in points[0].values if k != field]
        fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
        combos = {}
        for p in points:
            combos.setdefault(tuple(format_value(p.values[k]) for k in others), []).append(p)
        # names (env, optimizer, baseline, ...) sit at evenly spaced ticks
        names = [format_value(v) for v in dict.fromkeys(p.values[field] for p in points)
                 if isinstance(v, str)]
        for combo, members in itertools.islice(combos.items(), 8):
            xs, ys, lo, hi = [], [], [], []
            for p in members:
                r = by_point[p.index]
                if not r["n"]:
                    continue
                v = p.values[field]
                xs.append(names.index(format_value(v)) if names else
                          float(v) if not isinstance(v, tuple) else float(sum(v)))
                ys.append(r[metric])
                ci = r[f"{metric}_ci"]
                lo.append(r[metric] - ci[0])
                hi.append(ci[1] - r[metric])
            label = " ".join(f"{k}={v}" for k, v in zip(others, combo)) or metric
            ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=label)
        if names:
            ax.set_xticks(range(len(names)), names, fontsize=7)
        elif field in ("learning_rate", "ent_coef", "max_grad_norm") and all(
                float(p.values[field]) > 0 for p in points):
            ax.set_xscale("log")
        ax.set_xlabel(field + (" (sum of widths)" if field == "hidden_sizes" else ""))
        ax.set_ylabel(f"final return, {metric} (95% CI)")
        ax.set_title(f"sensitivity to {field}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = Path(out_dir) / f"sensitivity_{field}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def across_envs(result: SweepResult, window: int = FINAL_WINDOW,
                references: dict | None = None, metric: str = "iqm") -> dict | None:
    """For a sweep over several envs: per configuration (a point's values other than its
    env), every run's final return normalized on its env (``scores.normalize``: random 0,
    best known 1), aggregated over the envs (``scores.aggregate``), best first by
    ``metric``. None for a one-env sweep; ``{"error": why}`` when an env cannot be
    normalized."""
    points = result.plan.points
    envs = list(dict.fromkeys(p.config.env for p in points))
    if len(envs) < 2:
        return None
    refs, skipped = {}, {}
    for env in envs:
        try:
            refs[env] = reference_scores(env, references)
        except ValueError as err:
            skipped[env] = str(err)
    if len(refs) < 2:
        return {"envs": envs, "error": "; ".join(skipped.values())}
    envs = [env for env in envs if env in refs]
    finals = final_scores(result, window)
    configs: dict[str, dict[str, np.ndarray]] = {}
    for p in points:
        if p.config.env not in refs:
            continue
        label = ", ".join(f"{k}={format_value(v)}" for k, v in p.values.items()
                          if k != "env") or "base config"
        configs.setdefault(label, {})[p.config.env] = normalize(p.config.env, finals[p.index],
                                                                references)
    rows = [{"config": label, **aggregate(by_env)} for label, by_env in configs.items()]
    rows.sort(key=lambda r: -r.get(metric, -math.inf))
    return {"envs": envs, "references": refs, "skipped": skipped, "rows": rows,
            "rliable": rliable_layout(configs, envs)}


def format_across(across: dict, metric: str) -> str:
    if "error" in across:
        return (f"across {len(across['envs'])} envs: no normalized scores: "
                f"{across['error']}")
    lines = [f"across {len(across['envs'])} envs, normalized final return (0: random policy,"
             " 1: best known; CIs: stratified bootstrap over runs within each env):",
             f"  {'configuration':<36} {'runs':>5}  {'IQM [95% CI]':>22}  "
             f"{'mean [95% CI]':>22}  per env"]
    for r in across["rows"]:
        per_env = ", ".join(f"{env} {'-' if v is None else f'{v:.2f}'}"
                            for env, v in r["per_env"].items())
        if "mean" not in r:
            lines.append(f"  {r['config']:<36} {0:>5}  no finite runs")
            continue
        iq, mc = r["iqm_ci"], r["mean_ci"]
        lines.append(f"  {r['config']:<36} {r['runs']:>5}  {r['iqm']:>6.3f} [{iq[0]:>6.3f}, "
                     f"{iq[1]:>6.3f}]  {r['mean']:>6.3f} [{mc[0]:>6.3f}, {mc[1]:>6.3f}]  "
                     f"{per_env}")
    refs = "; ".join(f"{env} {low:.4g} .. {high:.4g}"
                     for env, (low, high) in across["references"].items())
    lines.append(f"  sorted by {metric}; random .. best: {refs}")
    lines += [f"  left out: {why}" for why in across["skipped"].values()]
    return "\n".join(lines)


def report(run_dir: Path, metric: str = "iqm", window: int = FINAL_WINDOW,
           reference: int | None = None, result: SweepResult | None = None,
           references: dict | None = None) -> str:
    """Print and return the table of ``run_dir``; write curves.png and sensitivity plots."""
    from reinforce_jax.io import write_json, write_npz

    run_dir = Path(run_dir)
    if not (run_dir / "sweep.json").exists():
        raise ValueError(f"run_dir={str(run_dir)!r} has no sweep.json; allowed: a directory "
                         "written by `reinforce-jax sweep`")
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}; allowed: {', '.join(METRICS)}")
    result = result or collect(run_dir)
    rows = sweep_table(result, metric, window, reference)
    ref_row = rows[0] if reference is None else next(r for r in rows if r["point"] == reference)
    text = format_table(rows, metric, f"#{ref_row['point']} {ref_row['label']}")
    across = across_envs(result, window, references, metric)
    written = []
    (run_dir / "scores_rliable.npz").unlink(missing_ok=True)  # none from an earlier report
    if across is not None:
        text += "\n\n" + format_across(across, metric)
        if "rows" in across:
            # rliable's layout: one [runs, tasks] array per configuration; tasks = envs
            write_npz(run_dir / "scores_rliable.npz",
                      {**across.pop("rliable"), "__tasks__": np.array(across["envs"])})
            written.append("scores_rliable.npz")
    print(text)
    plot_sweep_curves(result, run_dir / "curves.png", [r["point"] for r in rows])
    plots = plot_sensitivity(result, rows, run_dir, metric)
    write_json(run_dir / "report.json", {
        "metric": metric, "window": window, "reference": ref_row["point"],
        "rows": [{k: v for k, v in r.items() if k != "scores"} for r in rows],
        "across_envs": across})
    (run_dir / "report.txt").write_text(text + "\n")
    print(f"wrote {run_dir}/{{report.txt, report.json, curves.png"
          + "".join(f", {name}" for name in [*written, *(p.name for p in plots)]) + "}")
    return text

