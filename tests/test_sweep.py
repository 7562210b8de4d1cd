"""Sweeps: grid expansion, one compile for traced hyper-parameters, chunking, sharding,
resume after a kill, NaN isolation, and the statistics behind the report."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ctrl_c_on_fetch

from reinforce_jax import TrainConfig
from reinforce_jax import sweep as S
from reinforce_jax.driver import run_training
from reinforce_jax.report import final_scores, report, sweep_table
from reinforce_jax.stats import probability_of_improvement, stratified_bootstrap_ci

BASE = TrainConfig(env="CartPole-v1", num_envs=4, num_updates=6, horizon=24, hidden_sizes=(8,))
GRID = {"learning_rate": [1e-3, 1e-2], "gamma": [0.9, 0.99]}
SEEDS = 3
TOL = dict(rtol=1e-4, atol=1e-5)  # float32 round-off between differently batched programs


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The reference sweep: all 12 runs in one vmapped chunk."""
    out = tmp_path_factory.mktemp("sweep") / "whole"
    return S.run_sweep(BASE, GRID, SEEDS, out, chunk_updates=3, progress=False)


def test_grid_expansion_order_and_groups():
    points = S.expand_grid(BASE, {"learning_rate": [1e-3, 1e-2], "hidden_sizes": [(8,), (4, 4)]})
    assert [(p.values["learning_rate"], p.values["hidden_sizes"]) for p in points] == [
        (1e-3, (8,)), (1e-3, (4, 4)), (1e-2, (8,)), (1e-2, (4, 4))]
    assert points[3].config.learning_rate == 1e-2 and points[3].config.hidden_sizes == (4, 4)
    plan = S.make_plan(points, [0, 1], budget_bytes=2**40, num_devices=1)
    assert plan.groups == [[0, 2], [1, 3]]  # one compile per distinct hidden_sizes
    assert plan.runs(0) == [(0, 0), (0, 1), (2, 0), (2, 1)]
    assert len(S.expand_grid(BASE, {})) == 1


@pytest.mark.parametrize("grid, match", [
    ({"num_layers": [1]}, "allowed: learning_rate"),
    ({"learning_rate": []}, "no values"),
    ({"learning_rate": [1e-3, 1e-3]}, "repeats"),
    ({"learning_rate": [-1.0]}, "learning_rate=-1.0"),
    ({"gamma": [1.5]}, "gamma=1.5"),
])
def test_bad_grid_is_refused_before_compiling(grid, match, tmp_path, monkeypatch):
    import jax

    monkeypatch.setattr(jax, "jit", lambda *a, **k: pytest.fail("compiled before validating"))
    with pytest.raises(ValueError, match=match):
        S.run_sweep(BASE, grid, 2, tmp_path / "x", progress=False)


def test_runs_per_chunk_fits_the_budget_and_splits_evenly():
    assert S.runs_per_chunk(256, 100, 256 * 100, 1) == 256
    assert S.runs_per_chunk(256, 100, 100 * 100, 1) == 86  # 3 chunks of <=100, evenly
    assert S.runs_per_chunk(12, 100, 10**9, 8) == 16  # padded to the device count
    assert S.runs_per_chunk(12, 100, 10**9, 1, max_runs=5) == 4
    trainer = S.Trainer(BASE)
    small, big = S.estimate_run_bytes(trainer), S.estimate_run_bytes(
        S.Trainer(BASE.replace(num_envs=40)))
    assert 0 < small < big


def test_one_compile_for_the_whole_traced_grid(whole):
    assert whole.compiles == 1 and whole.finished.all()
    assert whole.metrics["loss"].shape == (4, SEEDS, BASE.num_updates)
    # different hyper-parameters really took effect
    assert not np.allclose(whole.metrics["loss"][0], whole.metrics["loss"][3])


def test_vmapped_hyperparameters_equal_separate_runs(whole):
    for p in (0, 3):
        point = whole.plan.points[p]
        alone = run_training(point.config, num_seeds=SEEDS, chunk_updates=3, progress=False)
        for name in ("loss", "grad_norm", "episode_return"):
            np.testing.assert_allclose(whole.metrics[name][p], alone.metrics[name], **TOL)


def test_chunked_equals_unchunked(whole, tmp_path):
    chunked = S.run_sweep(BASE, GRID, SEEDS, tmp_path / "c", max_runs_per_chunk=5,
                          chunk_updates=3, progress=False)
    assert chunked.plan.chunk_runs == [4] and len(list((tmp_path / "c/chunks").iterdir())) == 3
    assert chunked.compiles == 1  # equal chunk sizes: one program for all three
    for name in ("loss", "grad_norm", "episode_return"):
        np.testing.assert_allclose(chunked.metrics[name], whole.metrics[name], **TOL)


def test_memory_budget_forces_chunks(tmp_path):
    run_bytes = S.estimate_run_bytes(S.Trainer(BASE))
    result = S.run_sweep(BASE, {"learning_rate": [1e-3, 1e-2]}, 2, tmp_path / "m",
                         memory_budget_gb=1.5 * run_bytes / 2**30, progress=False)
    assert result.plan.chunk_runs == [1] and result.finished.all()


SHARDED = """
import sys, numpy as np, jax
from reinforce_jax import TrainConfig
from reinforce_jax.sweep import run_sweep
base = TrainConfig(env="CartPole-v1", num_envs=4, num_updates=6, horizon=24, hidden_sizes=(8,))
r = run_sweep(base, {"learning_rate": [1e-3, 1e-2], "gamma": [0.9, 0.99]}, 3, sys.argv[1],
              chunk_updates=3, progress=False)
np.save(sys.argv[1] + ".npy", np.stack([r.metrics["loss"], r.metrics["episode_return"]]))
print("devices", jax.local_device_count(), "chunk", r.plan.chunk_runs, "compiles", r.compiles)
"""


def test_eight_device_sharding_equals_one_device(whole, tmp_path):
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=8",
           "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "sharded"
    proc = subprocess.run([sys.executable, "-c", SHARDED, str(out)], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # 12 runs do not divide over 8 devices: padded to 16, not refused
    assert "devices 8 chunk [16] compiles 1" in proc.stdout
    loss, ret = np.load(f"{out}.npy")
    np.testing.assert_allclose(loss, whole.metrics["loss"], **TOL)
    np.testing.assert_allclose(ret, whole.metrics["episode_return"], **TOL)


def _cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reinforce_jax.cli", "sweep", "--env", "CartPole-v1",
            "--num-envs", "4", "--num-updates", "30", "--horizon", "24", "--hidden-sizes", "8",
            "--grid.learning-rate", "1e-3", "1e-2", "--grid.gamma", "0.9", "0.99",
            "--seeds", "3", "--max-runs-per-chunk", "2", "--chunk-updates", "3",
            "--checkpoint-every", "0", "--no-progress", "--out", str(out), *extra]


def test_killed_sweep_resumes_to_the_uninterrupted_result(tmp_path):
    # uninterrupted
    full = tmp_path / "full"
    proc = subprocess.run(_cli(full), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # killed (SIGKILL, no clean-up) once some chunks are done, then re-run as is
    cut = tmp_path / "cut"
    victim = subprocess.Popen(_cli(cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline and len(list((cut / "chunks").glob("*.npz"))) < 2:
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done_at_kill = len(list((cut / "chunks").glob("*.npz")))
    assert 2 <= done_at_kill < 6, "the kill must land mid-sweep"
    proc = subprocess.run(_cli(cut), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming {cut}: {2 * done_at_kill} of 12 runs already done" in proc.stdout
    a, b = np.load(full / "results.npz"), np.load(cut / "results.npz")
    for name in ("loss", "episode_return", "grad_norm"):
        np.testing.assert_array_equal(a[name], b[name])  # same programs, same chunks
    assert (cut / "report.txt").read_text() == (full / "report.txt").read_text()
    assert not list((cut / "ckpt").iterdir())  # checkpoints of finished chunks are removed


def test_a_different_sweep_in_the_same_directory_is_refused(whole, tmp_path):
    out = tmp_path / "w"
    S.run_sweep(BASE, {"learning_rate": [1e-3]}, 1, out, progress=False)
    with pytest.raises(ValueError, match="holds a different sweep .*grid"):
        S.run_sweep(BASE, {"learning_rate": [1e-2]}, 1, out, progress=False)


def test_diverged_run_is_marked_excluded_and_isolated(whole, tmp_path, monkeypatch):
    real = S.per_run_hparams

    def poison_first_run(hp, n):  # a NaN learning rate for run 0 (point 0, seed 0)
        hp = real(hp, n)
        return hp._replace(learning_rate=hp.learning_rate.at[0].set(np.nan))

    monkeypatch.setattr(S, "per_run_hparams", poison_first_run)
    out = tmp_path / "nan"
    result = S.run_sweep(BASE, GRID, SEEDS, out, chunk_updates=3, progress=False)
    assert result.diverged_at[0, 0] >= 0 and (result.diverged_at.ravel()[1:] < 0).all()
    assert any("seed 0 diverged" in m for m in result.messages)
    clean = np.ones((4, SEEDS), bool)
    clean[0, 0] = False
    np.testing.assert_allclose(result.metrics["loss"][clean], whole.metrics["loss"][clean], **TOL)
    rows = {r["point"]: r for r in sweep_table(result)}
    assert rows[0]["n"] == SEEDS - 1 and rows[0]["diverged"] == 1
    assert np.isnan(final_scores(result)[0, 0])
    text = report(out, result=result)
    assert "1 diverged run(s) excluded" in text
    assert (out / "curves.png").stat().st_size > 0 and (out / "sensitivity_gamma.png").exists()


def test_report_table_is_sorted_and_written(whole, tmp_path):
    rows = sweep_table(whole, "mean")
    means = [r["mean"] for r in rows]
    assert means == sorted(means, reverse=True)
    assert rows[0]["poi"][0] == 0.5  # the reference against itself
    for r in rows:
        low, high = r["mean_ci"]
        assert low <= r["mean"] <= high
    with pytest.raises(ValueError, match="reference=99"):
        sweep_table(whole, reference=99)
    with pytest.raises(ValueError, match="metric='median'"):
        sweep_table(whole, "median")


def test_train_checkpoint_resume_equals_uninterrupted(tmp_path, monkeypatch):

    cfg = BASE.replace(num_updates=6)
    full = run_training(cfg, num_seeds=2, chunk_updates=2, progress=False)
    restore = ctrl_c_on_fetch(monkeypatch, 3)

    ckpt = tmp_path / "checkpoint.npz"
    part = run_training(cfg, num_seeds=2, chunk_updates=2, progress=False, checkpoint=ckpt,
                        checkpoint_every=0.0)
    restore()
    assert part.interrupted and part.updates_done == 4 and ckpt.exists()
    rest = run_training(cfg, num_seeds=2, chunk_updates=2, progress=False, checkpoint=ckpt,
                        resume=True)
    assert rest.updates_done == 6 and not rest.interrupted
    for name in ("loss", "episode_return"):
        np.testing.assert_array_equal(rest.metrics[name], full.metrics[name])
    meta = json.loads(str(np.load(ckpt)["meta"]))
    assert meta["format_version"] == 1


def test_stratified_bootstrap_ci_covers_the_true_mean_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    hits = 0
    trials = 400
    for t in range(trials):
        tasks = [rng.normal(0.0, 1.0, size=30), rng.exponential(1.0, size=30) - 1.0]
        low, high = stratified_bootstrap_ci(tasks, np.mean, num_resamples=1000, seed=t)
        hits += low <= 0.0 <= high  # both tasks have mean 0: the pooled mean is 0
    assert 0.91 <= hits / trials <= 0.98  # nominal 0.95


def test_probability_of_improvement_on_known_distributions():
    rng = np.random.default_rng(1)
    x, y = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 400)
    est, low, high = probability_of_improvement(x, y)
    true = 0.7602  # P(N(1,1) > N(0,1)) = Phi(1/sqrt 2)
    assert low <= true <= high and abs(est - true) < 0.04
    assert probability_of_improvement(y, y)[0] == 0.5
