"""A tiny end-to-end CLI run, and the CLI's refusals."""

import json

import numpy as np
import pytest

from reinforce_jax.cli import main

TINY_ARGS = ["--num-envs", "4", "--num-updates", "4", "--horizon", "16", "--hidden-sizes", "8",
             "--chunk-updates", "2", "--no-progress"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--seeds", "3", "--out", str(out), *TINY_ARGS]) == 0
    return out


def test_writes_every_file(run_dir):
    for name in ("config.json", "metrics.npz", "summary.json", "curves.png"):
        assert (run_dir / name).stat().st_size > 0, name


def test_summary_has_a_final_return_per_seed(run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["env"] == "CartPole-v1"
    assert summary["seeds"] == [0, 1, 2]
    metrics = np.load(run_dir / "metrics.npz")
    curves = metrics["episode_return"]
    assert curves.shape == (3, 4)
    # final_return = mean episode return over the last 10 updates (all 4 here)
    np.testing.assert_allclose(summary["final_return"], curves.mean(axis=1), rtol=1e-6)
    assert summary["final_return_mean"] == pytest.approx(np.mean(curves.mean(axis=1)), rel=1e-6)
    low, high = summary["final_return_ci95"]
    assert low <= summary["final_return_mean"] <= high


def test_config_json_round_trips(run_dir):
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["config"]["num_envs"] == 4 and saved["seeds"] == 3


def test_prints_table_and_throughput(run_dir, capsys, tmp_path):
    assert main(["train", "--seeds", "2", "--out", str(tmp_path / "r"), *TINY_ARGS]) == 0
    out = capsys.readouterr().out
    assert "IQM" in out and "95% bootstrap CI" in out
    assert "env steps/s" in out and "compile" in out


def test_refuses_non_empty_out_unless_overwrite(run_dir, capsys):
    before = (run_dir / "summary.json").read_text()
    assert main(["train", "--out", str(run_dir), *TINY_ARGS]) == 2
    assert "not empty; pass --overwrite" in capsys.readouterr().err
    assert (run_dir / "summary.json").read_text() == before
    assert main(["train", "--seeds", "2", "--out", str(run_dir), "--overwrite", *TINY_ARGS]) == 0
    assert json.loads((run_dir / "summary.json").read_text())["seeds"] == [0, 1]


def test_unknown_env_lists_the_available_ones(tmp_path, capsys):
    assert main(["train", "--env", "Cartpole", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "env='Cartpole' is not known" in err and "CartPole-v1" in err
    assert not (tmp_path / "x").exists()


def test_bad_numbers_are_refused(tmp_path, capsys):
    assert main(["train", "--gamma", "2", "--out", str(tmp_path / "g")]) == 2
    assert "gamma=2.0; allowed: 0 <= gamma <= 1" in capsys.readouterr().err
    assert main(["train", "--seeds", "0", "--out", str(tmp_path / "s")]) == 2
    assert "seeds=0; allowed: an integer >= 1" in capsys.readouterr().err
