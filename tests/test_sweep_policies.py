"""A sweep keeps every run's final parameters: loadable per configuration and seed once
the sweep finishes, and after a kill and a resume."""

import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from reinforce_jax import TrainConfig, load_policy
from reinforce_jax.driver import run_training
from reinforce_jax.policy import load_policies
from reinforce_jax.sweep import load_plan, run_sweep

BASE = TrainConfig(env="CartPole-v1", num_envs=4, num_updates=6, horizon=24, hidden_sizes=(8,))
GRID = {"learning_rate": [1e-3, 1e-2]}


def _cli(out, *extra):
    return [sys.executable, "-m", "reinforce_jax.cli", "sweep", "--env", "CartPole-v1",
            "--num-envs", "4", "--num-updates", "30", "--horizon", "24", "--hidden-sizes", "8",
            "--grid.learning-rate", "1e-3", "1e-2", "--seeds", "3", "--max-runs-per-chunk",
            "1", "--chunk-updates", "3", "--checkpoint-every", "0", "--no-progress", "--out",
            str(out), *extra]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "s"
    run_sweep(BASE, GRID, 2, out, chunk_updates=3, progress=False)
    return out


def test_every_run_of_a_finished_sweep_is_loadable(sweep_dir):
    plan = load_plan(sweep_dir)
    for p, point in enumerate(plan.points):
        policies = load_policies(sweep_dir, point=p)
        assert policies.seeds == [0, 1] and policies.config == point.config
        # the same config trained by `train` ends at the same parameters (float round-off:
        # the sweep batches runs differently)
        alone = run_training(point.config, 2, progress=False)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                     policies.params, alone.params)
    policy = load_policy(sweep_dir, seed=1, point=1)
    action = policy.act(jax.random.key(0), np.zeros((5, 4), np.float32), greedy=True)
    assert action.shape == (5,)


def test_a_sweep_policy_needs_a_valid_point(sweep_dir):
    with pytest.raises(ValueError, match="point=None; allowed: a configuration index 0..1"):
        load_policies(sweep_dir)
    with pytest.raises(ValueError, match="point=7; allowed"):
        load_policy(sweep_dir, seed=0, point=7)


def test_sweep_runs_are_loadable_after_a_kill_and_a_resume(tmp_path):
    full, cut = tmp_path / "full", tmp_path / "cut"
    assert subprocess.run(_cli(full), capture_output=True, timeout=600).returncode == 0
    victim = subprocess.Popen(_cli(cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list((cut / "chunks").glob("*.npz"))) < 2:
        assert victim.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert len(list((cut / "chunks").glob("*.npz"))) < 6, "the kill must land mid-sweep"
    with pytest.raises(ValueError, match="has no finished run"):  # seeds of point 1 pending
        load_policies(cut, point=1)
    assert subprocess.run(_cli(cut), capture_output=True, timeout=600).returncode == 0
    for p in (0, 1):
        a, b = load_policies(full, point=p), load_policies(cut, point=p)
        assert a.seeds == b.seeds == [0, 1, 2]
        jax.tree.map(np.testing.assert_array_equal, a.params, b.params)


def test_eval_takes_a_sweep_configuration(sweep_dir, capsys):
    from reinforce_jax.cli import EXIT_OK, EXIT_USAGE, main

    assert main(["eval", str(sweep_dir), "--point", "1", "--episodes", "2"]) == EXIT_OK
    assert "evaluated 2 of 2 seeds x 2 episodes" in capsys.readouterr().out
    assert (sweep_dir / "eval_point1.json").is_file()
    assert main(["eval", str(sweep_dir), "--episodes", "2"]) == EXIT_USAGE
    assert "point=None; allowed" in capsys.readouterr().err


def test_a_gru_sweep_trains_and_keeps_its_policies(tmp_path):
    base = TrainConfig(env="MemoryChain-bsuite", gru_size=4, num_envs=2, num_updates=2,
                       horizon=8, hidden_sizes=(4,))
    out = tmp_path / "gru"
    run_sweep(base, {"learning_rate": [1e-3, 1e-2]}, 2, out, progress=False)
    policies = load_policies(out, point=1)
    assert policies.seeds == [0, 1] and policies.updates_done == 2
    assert "gru" in policies.params["params"]


def test_every_unstable_configuration_of_a_sweep_is_named():
    from reinforce_jax.sweep import check_sweep
    from reinforce_jax.train import StabilityWarning

    base = TrainConfig(env="CartPole-v1", baseline="separate", optimizer="sgd",
                       num_envs=1, reduction="sum")
    grid = {"learning_rate": [1e-4, 2 ** -6, 2 ** -5]}  # 1e-4 * 500 steps = 0.05: stable
    with pytest.warns(StabilityWarning) as caught:
        check_sweep(base, grid, 2, 0.5, None, None)
    named = sorted(str(w.message).split(" (")[0] for w in caught)
    assert named == ["configuration 1", "configuration 2"]


def test_a_file_that_holds_no_policies_is_refused_in_one_line(sweep_dir):
    chunk = sorted((sweep_dir / "chunks").glob("*.npz"))[0]
    with pytest.raises(ValueError, match="is not a kept-policies file"):
        load_policies(chunk)
