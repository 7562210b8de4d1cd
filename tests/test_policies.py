"""What a train run leaves behind: kept policies (load, act, eval, render) and its logs."""

import contextlib
import csv
import io
import json
import struct
from pathlib import Path
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from reinforce_jax import TrainConfig, Trainer, load_policy
from reinforce_jax.cli import EXIT_OK, EXIT_USAGE, main
from reinforce_jax.driver import load_outcome, seed_keys
from reinforce_jax.evaluate import evaluate
from reinforce_jax.loggers import CsvLogger, parse_log
from reinforce_jax.policy import load_policies, save_policies
from reinforce_jax.train import METRIC_NAMES

TINY_ARGS = ["--num-envs", "4", "--num-updates", "4", "--horizon", "16", "--hidden-sizes", "8",
             "--chunk-updates", "2", "--no-progress"]
SEEDS = 3


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny train run with both loggers, and what it printed."""
    out = tmp_path_factory.mktemp("policies") / "run"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["train", "--seeds", str(SEEDS), "--out", str(out), "--log",
                     "tensorboard,csv", *TINY_ARGS])
    assert code == EXIT_OK, printed.getvalue()
    return SimpleNamespace(out=out, printed=printed.getvalue())


def test_train_then_eval_then_render(trained, tmp_path, capsys):
    out = trained.out
    assert (out / "policies.npz").stat().st_size > 0
    assert main(["eval", str(out), "--episodes", "5", "--greedy"]) == EXIT_OK
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(f"reinforce-jax: evaluated {SEEDS} of {SEEDS} seeds x 5 episodes"), last
    report = json.loads((out / "eval.json").read_text())
    assert report["greedy"] is True and report["episodes"] == 5 and report["env"] == "CartPole-v1"
    assert [row["seed"] for row in report["per_seed"]] == [0, 1, 2]
    for row in report["per_seed"]:
        # CartPole pays 1 per step: a return is the episode's length, at most the time limit
        assert row["returns"] == row["lengths"] and all(1 <= n <= 500 for n in row["lengths"])
        assert row["ci95"][0] <= row["mean_return"] <= row["ci95"][1]
    agg = report["aggregate"]
    means = [np.mean(row["returns"]) for row in report["per_seed"]]
    assert agg["mean"] == pytest.approx(np.mean(means)) and agg["seeds_included"] == SEEDS

    gif = tmp_path / "seed1.gif"
    assert main(["render", str(out), "--seed", "1", "--out", str(gif), "--greedy"]) == EXIT_OK
    last = capsys.readouterr().out.strip().splitlines()[-1]
    frames = int(last.split(" frames")[0].rsplit(" ", 1)[-1])
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == frames >= 8, last
    short = tmp_path / "short.gif"
    assert main(["render", str(out), "--seed", "1", "--out", str(short), "--max-frames", "5",
                 "--episode-seed", "3"]) == EXIT_OK
    assert "5 frames (cut at max_frames)" in capsys.readouterr().out
    with Image.open(short) as im:
        assert im.n_frames == 5


def test_kept_params_are_the_trained_ones(trained):
    cfg = TrainConfig(num_envs=4, num_updates=4, horizon=16, hidden_sizes=(8,))
    state = load_outcome(trained.out / "checkpoint.npz", Trainer(cfg), seed_keys([0, 1, 2])).state
    kept = load_policies(trained.out)
    assert kept.seeds == [0, 1, 2] and kept.config == cfg and kept.updates_done == 4
    for a, b in zip(jax.tree.leaves(kept.params), jax.tree.leaves(state.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_load_policy_acts_and_vmaps(trained):
    policy = load_policy(trained.out, seed=2)
    assert policy.seed == 2 and policy.config.env == "CartPole-v1"
    obs = jax.random.normal(jax.random.key(0), (64, 4))
    keys = jax.random.split(jax.random.key(1), 64)
    sampled = jax.jit(jax.vmap(policy.act))(keys, obs)
    greedy = jax.vmap(lambda k, o: policy.act(k, o, greedy=True))(keys, obs)
    logits = policy.module.apply(policy.params, obs)[0]
    assert sampled.shape == (64,) and set(np.unique(sampled)) <= {0, 1}
    np.testing.assert_array_equal(greedy, jnp.argmax(logits, axis=-1))


def test_gaussian_policy_greedy_is_the_mean_and_evaluates(tmp_path):
    cfg = TrainConfig(env="Pendulum-v1", num_envs=2, num_updates=1, hidden_sizes=(8,))
    trainer = Trainer(cfg)
    params = jax.vmap(trainer.init)(seed_keys([5, 6])).params
    save_policies(tmp_path / "policies.npz", cfg, [5, 6], params)  # as a sweep would, per run
    policy = load_policy(tmp_path, seed=6)
    obs = jnp.ones((3,))
    (mean, _), _ = policy.module.apply(policy.params, obs)
    np.testing.assert_array_equal(policy.act(jax.random.key(0), obs, greedy=True), mean)
    assert not np.allclose(policy.act(jax.random.key(0), obs), mean)
    result = evaluate(load_policies(tmp_path), episodes=2, greedy=True)
    assert result.returns.shape == (2, 2) and (result.lengths == 200).all()
    assert np.isfinite(result.returns).all() and (result.returns < 0).all()


def test_a_recurrent_policy_carries_its_memory(tmp_path):
    cfg = TrainConfig(num_envs=2, num_updates=1, hidden_sizes=(8,), gru_size=4)
    params = jax.vmap(Trainer(cfg).init)(seed_keys([0])).params
    save_policies(tmp_path / "policies.npz", cfg, [0], params)
    policy = load_policy(tmp_path)
    memory = policy.initial_memory()
    assert memory.shape == (4,)
    action, memory = policy.act(jax.random.key(0), jnp.ones(4), memory=memory)
    assert action.shape == () and memory.shape == (4,) and np.any(memory != 0)
    with pytest.raises(ValueError, match="needs its memory"):
        policy.act(jax.random.key(0), jnp.ones(4))
    result = evaluate(load_policies(tmp_path), episodes=3, greedy=True)
    assert (result.returns == result.lengths).all() and (result.lengths >= 8).all()
    gif = tmp_path / "gru.gif"
    assert main(["render", str(tmp_path), "--out", str(gif), "--max-frames", "4"]) == EXIT_OK
    with Image.open(gif) as im:
        assert im.n_frames == 4


def test_csv_has_one_row_per_seed_update_metric(trained):
    metrics = np.load(trained.out / "metrics.npz")
    with open(trained.out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["run", "seed", "update", "env_steps", "metric", "value"]
    keys = {(r["seed"], r["update"], r["metric"]) for r in rows}
    assert len(rows) == len(keys) == SEEDS * 4 * len(METRIC_NAMES)
    steps = np.cumsum(metrics["env_steps"], axis=1)
    for r in rows:
        s, u = int(r["seed"]), int(r["update"])
        assert r["run"] == "run" and int(r["env_steps"]) == steps[s, u - 1]
        assert float(r["value"]) == pytest.approx(float(metrics[r["metric"]][s, u - 1]))


def read_scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] from the TFRecord event files in ``log_dir`` (length, CRC,
    payload, CRC; the CRCs checked), decoded with tensorboardX's Event protobuf."""
    from tensorboardX.proto.event_pb2 import Event
    from tensorboardX.record_writer import masked_crc32c

    scalars: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(log_dir.glob("events.out.tfevents.*")):
        data, pos = path.read_bytes(), 0
        while pos < len(data):
            header = data[pos:pos + 8]
            (length,) = struct.unpack("Q", header)
            assert struct.unpack("I", data[pos + 8:pos + 12])[0] == masked_crc32c(header)
            body = data[pos + 12:pos + 12 + length]
            assert struct.unpack("I", data[pos + 12 + length:pos + 16 + length])[0] == \
                masked_crc32c(body)
            pos += 16 + length
            event = Event.FromString(body)
            for value in event.summary.value:
                scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
    return scalars


def test_tensorboard_events_read_back(trained):
    metrics = np.load(trained.out / "metrics.npz")
    for seed in range(SEEDS):
        scalars = read_scalars(trained.out / "tensorboard" / f"seed_{seed}")
        assert set(scalars) == set(METRIC_NAMES)
        steps = np.cumsum(metrics["env_steps"][seed])
        for tag, points in scalars.items():
            assert [p[0] for p in points] == steps.tolist()  # x-axis: env steps
            np.testing.assert_allclose([p[1] for p in points], metrics[tag][seed], rtol=1e-6)


def test_no_progress_prints_a_line_per_chunk(trained):
    lines = [line for line in trained.printed.splitlines() if line.startswith("training:")]
    assert [line.split()[2] for line in lines] == ["2/4", "4/4"], trained.printed
    assert "env steps" in lines[-1] and "return" in lines[-1]


def test_a_fresh_logger_rewrites_the_whole_history(tmp_path):
    """A resumed run's history restarts at its checkpoint: its logs are rewritten, so
    updates done after the checkpoint and before the kill are not duplicated."""
    def outcome(updates):
        ones = np.ones((1, updates))
        return SimpleNamespace(metrics={"loss": ones * 2, "env_steps": ones * 10})

    first = CsvLogger(tmp_path / "m.csv", "r", [0])
    first(outcome(2), 2)
    first(outcome(4), 4)
    first.close()
    resumed = CsvLogger(tmp_path / "m.csv", "r", [0])
    resumed(outcome(3), 3)
    resumed.close()
    with open(tmp_path / "m.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["update"], r["env_steps"], r["metric"]) for r in rows] == [
        (str(u), str(10 * u), m) for u in (1, 2, 3) for m in ("loss", "env_steps")]


def _error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_bad_input_is_one_line_and_exit_2(trained, tmp_path, capsys):
    out = str(trained.out)
    assert main(["eval", str(tmp_path)]) == EXIT_USAGE
    assert "has no kept policies (policies.npz)" in _error_line(capsys)
    assert main(["eval", out, "--episodes", "0"]) == EXIT_USAGE
    assert "episodes=0; allowed: an integer >= 1" in _error_line(capsys)
    (trained.out / "eval.json").write_text("{}")
    assert main(["eval", out]) == EXIT_USAGE
    assert "eval.json' exists; pass --overwrite" in _error_line(capsys)
    assert main(["render", out, "--seed", "7"]) == EXIT_USAGE
    assert "seed=7; allowed: one of the kept seeds 0, 1, 2" in _error_line(capsys)
    assert main(["render", out, "--out", str(tmp_path / "x.png")]) == EXIT_USAGE
    assert "allowed: a path ending in .gif" in _error_line(capsys)
    assert main(["train", "--log", "tensorboard,mlflow", "--out", str(tmp_path / "t")]) \
        == EXIT_USAGE
    assert "log='tensorboard,mlflow'; allowed: none, or a comma-separated list of " \
           "tensorboard, csv" in _error_line(capsys)
    assert not (tmp_path / "t").exists()
    with pytest.raises(ValueError, match="seed is missing"):
        load_policy(trained.out)
    assert parse_log("none") == () and parse_log("csv, tensorboard") == ("csv", "tensorboard")


def test_an_env_gymnax_cannot_draw_is_refused_by_name(tmp_path, capsys):
    cfg = TrainConfig(env="FourCurves", num_envs=2, num_updates=1, hidden_sizes=(4,))
    params = jax.vmap(Trainer(cfg).init)(seed_keys([0])).params
    save_policies(tmp_path / "policies.npz", cfg, [0], params)
    assert main(["render", str(tmp_path)]) == EXIT_USAGE
    assert "env='FourCurves' cannot be rendered: gymnax's visualizer draws only" in \
        _error_line(capsys)


@pytest.mark.slow
def test_greedy_eval_of_a_trained_cartpole_run_keeps_its_475(tmp_path, capsys):
    out = tmp_path / "cp"
    assert main(["train", "--seeds", "4", "--out", str(out), "--no-progress"]) == EXIT_OK
    final = json.loads((out / "summary.json").read_text())["final_return"]
    assert main(["eval", str(out), "--greedy", "--episodes", "20"]) == EXIT_OK
    capsys.readouterr()
    report = json.loads((out / "eval.json").read_text())
    good = [row for row, f in zip(report["per_seed"], final) if f is not None and f >= 475]
    assert good, f"no seed trained to 475 (final returns {final})"
    for row in good:
        assert row["mean_return"] >= 475, (row["seed"], row["mean_return"], final)
