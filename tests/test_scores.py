"""Normalized scores across envs (reinforce_jax.scores) and the random-policy floor."""

import numpy as np
import pytest

from reinforce_jax.evaluate import random_returns
from reinforce_jax.scores import aggregate, normalize, reference, rliable_layout

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
