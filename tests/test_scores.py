"""Normalized scores across envs (reinforce_jax.scores) and the random-policy floor."""

import numpy as np
import pytest

from reinforce_jax.evaluate import random_returns
from reinforce_jax.scores import RANDOM, aggregate, normalize, reference, rliable_layout

REFS = {"A": (0.0, 10.0), "B": (-100.0, 100.0)}


def test_random_scores_zero_and_best_known_one():
    np.testing.assert_allclose(normalize("A", [0.0, 10.0, 5.0], REFS), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(normalize("B", [-100.0, 100.0, 300.0], REFS), [0.0, 1.0, 2.0])


def test_aggregate_pools_runs_and_resamples_within_each_env():
    out = aggregate({"A": np.array([0.5, 0.5, np.nan]), "B": np.array([1.0, 1.0, 1.0])})
    assert out["tasks"] == 2 and out["runs"] == 5 and out["excluded"] == 1
    assert out["mean"] == pytest.approx(0.8) and out["per_env"] == {"A": 0.5, "B": 1.0}
    # every env's runs are equal, so a stratified resample cannot move the mean
    assert out["mean_ci"] == pytest.approx([0.8, 0.8])
    spread = aggregate({"A": np.array([0.0, 1.0] * 8), "B": np.array([0.5] * 16)})
    low, high = spread["mean_ci"]
    assert low < 0.5 < high and high - low < 0.5


def test_built_in_references_are_the_recorded_random_returns_and_published_ones():
    import json
    from pathlib import Path

    recorded = {}
    for path in (Path(__file__).parents[1] / "benchmarks" / "results" / "envs").glob("*.json"):
        r = json.loads(path.read_text())
        recorded[r["env"]] = r["random_return"]["mean"]
    assert recorded.keys() == RANDOM.keys()
    for env, value in recorded.items():
        assert RANDOM[env] == pytest.approx(value, rel=1e-5), env
    assert reference("CartPole-v1") == (RANDOM["CartPole-v1"], 500.0)
    assert reference("CartPole-v1", {"CartPole-v1": 400}) == (RANDOM["CartPole-v1"], 400.0)
    with pytest.raises(ValueError, match="DeepSea-bsuite.*best known 0 is not above random"):
        reference("DeepSea-bsuite")  # gymnax's 0 is below a random policy's 0.004


def test_rliable_layout_is_runs_by_tasks_padded_with_nan():
    table = rliable_layout({"lr=0.01": {"A": [1, 2, 3], "B": [4, 5]}}, ["A", "B"])
    assert table["lr=0.01"].shape == (3, 2)
    np.testing.assert_array_equal(table["lr=0.01"][:, 1], [4, 5, np.nan])


def test_references_refuse_what_cannot_be_normalized():
    with pytest.raises(ValueError, match="'LineWalk' has no published best return"):
        reference("LineWalk")
    with pytest.raises(ValueError, match="best known 1 is not above random 2"):
        reference("A", {"A": (2.0, 1.0)})


def test_random_policy_on_cartpole_scores_about_22():
    returns = random_returns("CartPole-v1", episodes=512)
    assert returns.shape == (512,) and 19 < returns.mean() < 26  # the known ~22
    assert (returns >= 8).all() and (returns <= 500).all()


def test_a_sweep_over_envs_reports_normalized_scores_and_rliable_arrays(tmp_path):
    import json

    from reinforce_jax.cli import main
    from reinforce_jax.report import final_scores
    from reinforce_jax.sweep import collect

    refs = tmp_path / "refs.json"
    refs.write_text(json.dumps({"CartPole-v1": [20.0, 500.0], "Acrobot-v1": [-500.0, -80.0]}))
    out = tmp_path / "sweep"
    assert main(["sweep", "--grid.env", "CartPole-v1", "Acrobot-v1", "--grid.learning-rate",
                 "0.01", "0.001", "--seeds", "3", "--num-envs", "4", "--num-updates", "2",
                 "--hidden-sizes", "8", "--no-progress", "--out", str(out)]) == 0
    assert main(["report", str(out), "--references", str(refs)]) == 0
    assert "across 2 envs, normalized final return" in (out / "report.txt").read_text()
    arrays = np.load(out / "scores_rliable.npz")
    assert list(arrays["__tasks__"]) == ["CartPole-v1", "Acrobot-v1"]
    finals = final_scores(collect(out))  # [points, seeds]; points: env x learning rate
    lr01 = arrays["learning_rate=0.01"]
    assert lr01.shape == (3, 2)  # [runs, tasks]
    np.testing.assert_allclose(lr01[:, 0], (finals[0] - 20.0) / 480.0)
    np.testing.assert_allclose(lr01[:, 1], (finals[2] + 500.0) / 420.0)
    report = json.loads((out / "report.json").read_text())["across_envs"]
    assert report["envs"] == ["CartPole-v1", "Acrobot-v1"] and len(report["rows"]) == 2
    # the built-in references: a random policy's measured return and gymnax's published one
    assert main(["report", str(out)]) == 0
    builtin = json.loads((out / "report.json").read_text())["across_envs"]["references"]
    assert builtin == {"CartPole-v1": [RANDOM["CartPole-v1"], 500.0],
                       "Acrobot-v1": [RANDOM["Acrobot-v1"], -80.0]}
    # a references file that is not there: one line, exit 2
    assert main(["report", str(out), "--references", str(tmp_path / "missing.json")]) == 2
