"""--log for sweeps: one TensorBoard run and one set of CSV rows per (configuration, seed),
equal to the sweep's results, written once even when a chunk is interrupted and resumed."""

import csv

import numpy as np
import pytest
from conftest import ctrl_c_on_fetch
from test_policies import read_scalars

from reinforce_jax.cli import EXIT_OK, EXIT_SIGNAL, main
from reinforce_jax.loggers import CsvLogger
from reinforce_jax.train import METRIC_NAMES

SWEEP_ARGS = ["sweep", "--num-envs", "4", "--num-updates", "4", "--horizon", "16",
              "--hidden-sizes", "8", "--chunk-updates", "2", "--no-progress", "--seeds", "2",
              "--grid.learning-rate", "1e-3", "1e-2", "--max-runs-per-chunk", "2",
              "--checkpoint-every", "0", "--log", "tensorboard,csv"]
POINTS, SEEDS, UPDATES = 2, 2, 4


def check_logs(out):
    """metrics.csv and the event files hold each run's metrics once, as results.npz does."""
    results = np.load(out / "results.npz")
    assert results["finished"].all()
    steps = np.cumsum(results["env_steps"], axis=-1)
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CsvLogger.SWEEP_COLUMNS
    keys = {(r["point"], r["seed"], r["update"], r["metric"]) for r in rows}
    assert len(rows) == len(keys) == POINTS * SEEDS * UPDATES * len(METRIC_NAMES)
    for r in rows:
        p, s, u = int(r["point"]), int(r["seed"]), int(r["update"])
        assert r["run"] == out.name and int(r["env_steps"]) == steps[p, s, u - 1]
        assert float(r["value"]) == pytest.approx(float(results[r["metric"]][p, s, u - 1]))
    for p in range(POINTS):
        for s in range(SEEDS):
            scalars = read_scalars(out / "tensorboard" / f"point_{p}" / f"seed_{s}")
            assert set(scalars) == set(METRIC_NAMES)
            for tag, points in scalars.items():
                assert [step for step, _ in points] == steps[p, s].tolist()
                np.testing.assert_allclose([v for _, v in points], results[tag][p, s],
                                           rtol=1e-6)


def test_a_sweep_logs_every_configuration_and_seed(tmp_path, capsys):
    out = tmp_path / "logged"
    assert main([*SWEEP_ARGS, "--out", str(out)]) == EXIT_OK
    assert f"logged metrics to {out / 'tensorboard'}, {out / 'metrics.csv'}" in \
        capsys.readouterr().out
    check_logs(out)


def test_an_interrupted_chunk_is_logged_once_after_the_resume(tmp_path, monkeypatch):
    # Ctrl-C in the first chunk, after its first checkpoint
    restore = ctrl_c_on_fetch(monkeypatch, 2)

    out = tmp_path / "resumed"
    assert main([*SWEEP_ARGS, "--out", str(out)]) == EXIT_SIGNAL + 2
    restore()
    assert (out / "ckpt" / "g000-c00000.npz").exists()
    with open(out / "csv" / "g000-c00000.csv", newline="") as f:
        assert {int(r["update"]) for r in csv.DictReader(f)} == {1, 2}
    assert main([*SWEEP_ARGS, "--out", str(out)]) == EXIT_OK
    check_logs(out)
