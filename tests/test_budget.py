"""--total-env-steps: a budget in env steps that derives num_updates, and learning curves
plotted against cumulative env steps."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from reinforce_jax import TrainConfig
from reinforce_jax.cli import EXIT_OK, EXIT_USAGE, main
from reinforce_jax.plots import ENV_STEPS_LABEL, cumulative_env_steps, curves_figure
from reinforce_jax.report import sweep_curves_figure
from reinforce_jax.sweep import expand_grid
from reinforce_jax.train import Trainer

SMALL = dict(env="CartPole-v1", num_envs=4, hidden_sizes=(8,))


def test_episodic_budget_uses_the_time_limit():
    # CartPole's time limit is 500: an update computes 4 x 500 = 2000 steps
    cfg = TrainConfig(**SMALL, total_env_steps=10_000).validate()
    assert cfg.num_updates == 5  # 10000 / 2000
    assert TrainConfig(**SMALL, total_env_steps=10_001).validate().num_updates == 6


def test_episodic_budget_with_a_horizon():
    cfg = TrainConfig(**SMALL, horizon=16, total_env_steps=1000).validate()
    assert cfg.num_updates == 16  # ceil(1000 / (4 x 16)) = ceil(15.6)
    trainer = Trainer(TrainConfig(**SMALL, horizon=16, total_env_steps=1000))
    assert trainer.config.num_updates == 16 and trainer.num_steps == 16  # the anneal's count


def test_fixed_budget():
    fixed = dict(SMALL, rollout="fixed")
    assert TrainConfig(**fixed, total_env_steps=10_000).validate().num_updates == 20  # / 4x128
    assert TrainConfig(**fixed, horizon=32, total_env_steps=256).validate().num_updates == 2


def test_no_budget_keeps_num_updates():
    cfg = TrainConfig(**SMALL, num_updates=7)
    assert cfg.validate() is cfg


def test_derived_config_validates_to_itself():
    cfg = TrainConfig(**SMALL, total_env_steps=10_000).validate()
    assert cfg.total_env_steps == 10_000 and cfg.validate() == cfg


def test_sweep_points_derive_their_own_num_updates():
    base = TrainConfig(**SMALL, horizon=16, total_env_steps=1024)
    points = expand_grid(base, {"num_envs": [4, 8]})
    assert [p.config.num_updates for p in points] == [16, 8]


def test_both_budgets_refused():
    with pytest.raises(ValueError, match=r"num_updates=10 with total_env_steps=1000; allowed: "
                                         r"one of them"):
        TrainConfig(**SMALL, num_updates=10, total_env_steps=1000).validate()
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match=r"total_env_steps=.*allowed: an integer >= 1"):
            TrainConfig(**SMALL, total_env_steps=bad).validate()


def test_cli_refuses_both_in_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--num-updates", "10", "--total-env-steps", "1000", "--num-envs", "4",
                 "--hidden-sizes", "8", "--no-progress", "--out", str(out)])
    assert code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "num_updates=10 with total_env_steps=1000" in err[0], err
    assert not out.exists()


def test_cli_train_with_a_step_budget(tmp_path, capsys):
    out = tmp_path / "run"
    # episodic, horizon 16, 4 envs: 64 steps computed per update; ceil(200 / 64) = 4 updates
    code = main(["train", "--seeds", "2", "--num-envs", "4", "--horizon", "16",
                 "--hidden-sizes", "8", "--total-env-steps", "200", "--chunk-updates", "2",
                 "--no-progress", "--out", str(out)])
    assert code == EXIT_OK
    assert "--total-env-steps 200: 4 updates of 64 env steps each" in capsys.readouterr().out
    metrics = np.load(out / "metrics.npz")
    assert metrics["episode_return"].shape == (2, 4)
    assert (metrics["env_steps"] <= 64).all() and (metrics["env_steps"] >= 4).all()
    saved = json.loads((out / "config.json").read_text())["config"]
    assert saved["num_updates"] == 4 and saved["total_env_steps"] == 200
    assert (out / "curves.png").stat().st_size > 0


def test_train_curves_x_axis_is_cumulative_env_steps():
    import matplotlib.pyplot as plt

    curves = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [np.nan, np.nan, np.nan]])
    steps = np.array([[10, 20, 30], [30, 20, 20], [5, 5, 5]])
    fig = curves_figure(curves, steps, "t", diverged=np.array([False, False, True]))
    try:
        ax = fig.axes[0]
        assert ax.get_xlabel().startswith(ENV_STEPS_LABEL)
        assert "padding excluded" in ax.get_xlabel()
        mean_line = next(line for line in ax.lines if line.get_label().startswith("mean of"))
        # the mean over the two finite seeds of their cumulative sums [10, 30, 60] and
        # [30, 50, 70]; the diverged seed's steps are left out
        np.testing.assert_allclose(mean_line.get_xdata(), [20, 40, 65])
        assert any(a.get_xlabel() == "update" for a in fig.axes[0].child_axes)
    finally:
        plt.close(fig)


def test_sweep_curves_x_axis_is_cumulative_env_steps():
    import matplotlib.pyplot as plt

    # two configurations of 2 seeds; the second ran 2 updates (the rest is NaN padding)
    ret = np.array([[[1.0, 2.0, 3.0], [2.0, 2.0, 2.0]], [[5.0, 6.0, np.nan], [5.0, 6.0, np.nan]]])
    steps = np.array([[[10, 10, 10], [30, 30, 30]], [[100, 100, np.nan], [50, 50, np.nan]]])
    points = [SimpleNamespace(config=SimpleNamespace(num_updates=u), label=f"p{i}")
              for i, u in enumerate((3, 2))]
    result = SimpleNamespace(metrics={"episode_return": ret, "env_steps": steps},
                             plan=SimpleNamespace(points=points),
                             diverged_at=np.full((2, 2), -1), finished=np.ones((2, 2), bool))
    fig = sweep_curves_figure(result, [0, 1])
    try:
        ax = fig.axes[0]
        assert ax.get_xlabel().startswith(ENV_STEPS_LABEL)
        xs = [line.get_xdata() for line in ax.lines]
        np.testing.assert_allclose(xs[0], [20, 40, 60])
        np.testing.assert_allclose(xs[1], [75, 150])
    finally:
        plt.close(fig)


def test_cumulative_env_steps_refuses_a_flat_array():
    np.testing.assert_allclose(cumulative_env_steps([[1, 2], [3, 4]]), [2, 5])
    with pytest.raises(ValueError, match=r"allowed: \[runs, updates\]"):
        cumulative_env_steps([1, 2, 3])
