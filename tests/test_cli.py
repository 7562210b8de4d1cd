"""A tiny end-to-end CLI run, the CLI's refusals, and its exit codes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reinforce_jax.cli import (EXIT_DIVERGED, EXIT_OK, EXIT_SIGNAL, EXIT_UNSOLVED, EXIT_USAGE,
                               main)

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
    assert main(["train", "--seeds", "2", "--out", str(tmp_path / "r"), *TINY_ARGS]) == EXIT_OK
    out = capsys.readouterr().out
    assert "IQM" in out and "95% bootstrap CI" in out
    assert "env steps/s" in out and "compile" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("reinforce-jax: done: 2 of 2 seeds trained 4 updates"), last


SOLVE_ARGS = ["--num-envs", "4", "--num-updates", "40", "--hidden-sizes", "8",
              "--no-progress", "--until-solved"]


def test_until_solved_stops_once_every_seed_is_solved(tmp_path, capsys):
    # a random CartPole policy already averages about 22: every seed is "solved" at 15
    # as soon as it has 10 updates, so the run stops at the first check after update 10
    out = tmp_path / "r"
    assert main(["train", "--seeds", "3", "--out", str(out), *SOLVE_ARGS,
                 "--solved-return", "15"]) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    curves = np.load(out / "metrics.npz")["episode_return"]
    assert summary["updates_done"] == curves.shape[1] == 10  # chunks of 5 updates; 40 allowed
    solved = summary["solved"]
    assert solved["seeds_solved"] == 3 and solved["solved_at_update"] == [10, 10, 10]
    assert (curves.mean(axis=1) >= 15).all()
    steps = np.load(out / "metrics.npz")["env_steps"]
    assert solved["env_steps_to_solve"] == steps.sum(axis=1).tolist()
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert "done: 3 of 3 seeds solved" in last and "in 10 updates" in last, last


def test_until_solved_that_runs_out_exits_6(tmp_path, capsys):
    out = tmp_path / "r"
    code = main(["train", "--seeds", "2", "--out", str(out), *SOLVE_ARGS, "--num-updates", "10",
                 "--solved-return", "500"])
    assert code == EXIT_UNSOLVED
    summary = json.loads((out / "summary.json").read_text())
    assert summary["updates_done"] == 10 and summary["solved"]["seeds_solved"] == 0
    assert summary["solved"]["env_steps_to_solve"] == [None, None]
    assert "not solved: 0 of 2 seeds solved" in capsys.readouterr().err


def test_the_compile_cache_keeps_programs_and_changes_no_result(tmp_path):
    """Two identical commands in fresh processes with the cache in tmp_path: the first
    writes compiled programs there, the second trains bit-identically (from them)."""
    cache = tmp_path / "xla"
    env = {**os.environ, "REINFORCE_JAX_COMPILE_CACHE": str(cache)}
    curves = []
    for run in ("a", "b"):
        out = tmp_path / run
        subprocess.run([sys.executable, "-m", "reinforce_jax", "train", "--seeds", "2", "--out",
                        str(out), *TINY_ARGS], env=env, check=True, capture_output=True)
        if run == "a":
            assert any(cache.glob("jit_run_updates-*")), sorted(p.name for p in cache.iterdir())
        curves.append(np.load(out / "metrics.npz"))
    for name in ("episode_return", "loss", "grad_norm"):
        np.testing.assert_array_equal(curves[0][name], curves[1][name], err_msg=name)


def test_every_seed_diverged_exits_3(tmp_path, capsys):
    # a step size of 1e38 overflows the weights on the first update, for every seed
    code = main(["train", "--seeds", "2", "--out", str(tmp_path / "d"), "--learning-rate",
                 "1e38", "--max-grad-norm", "inf", *TINY_ARGS])
    assert code == EXIT_DIVERGED == 3
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith(
        "reinforce-jax: every seed diverged (2 of 2")
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["diverged_seeds"] == [0, 1] and summary["final_return_mean"] is None


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_keeps_the_partial_run_and_exits_128_plus_it(tmp_path, signum):
    out = tmp_path / "sig"
    args = [*TINY_ARGS, "--seeds", "2", "--out", str(out), "--num-updates", "100000",
            "--checkpoint-every", "0"]  # later options win: a run far too long to finish
    proc = subprocess.Popen([sys.executable, "-m", "reinforce_jax", "train", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while not (out / "checkpoint.npz").exists():  # the first chunk of updates is done
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.2)
    proc.send_signal(signum)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_SIGNAL + signum, (stdout, stderr)
    assert "interrupted after" in stderr.strip().splitlines()[-1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and 0 < summary["updates_done"] < 100000
    kept = np.load(out / "metrics.npz")["episode_return"]
    assert kept.shape == (2, summary["updates_done"]) and np.isfinite(kept).all()


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


def test_env_help_names_the_envs_and_where_to_list_them(capsys):
    assert main(["train", "--help"]) == EXIT_OK
    text = " ".join(capsys.readouterr().out.split())
    section = text[text.index("--env"):text.index("--num-envs")]
    assert "reinforce-jax envs" in section  # the full list, with spaces (tests/test_all_envs)
    for name in ("CartPole-v1", "Acrobot-v1", "MountainCar-v0", "Pendulum-v1",
                 "MountainCarContinuous-v0", "Breakout-MinAtar", "Catch-bsuite",
                 "FourCurves", "LineWalk", "DigitMatch-N", "DigitMatch-N-onehot"):
        assert name in section, name


def test_bad_numbers_are_refused(tmp_path, capsys):
    assert main(["train", "--gamma", "2", "--out", str(tmp_path / "g")]) == 2
    assert "gamma=2.0; allowed: 0 <= gamma <= 1" in capsys.readouterr().err
    assert main(["train", "--seeds", "0", "--out", str(tmp_path / "s")]) == 2
    assert "seeds=0; allowed: an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("learning_rate, code, last", [
    ("1e-2", EXIT_OK, "done: 2 of 2 runs"),
    ("1e38", EXIT_DIVERGED, "every run diverged"),
])
def test_sweep_and_report_exit_codes(learning_rate, code, last, tmp_path, capsys):
    out = str(tmp_path / "s")
    assert main(["sweep", *TINY_ARGS, "--seeds", "2", "--out", out, "--max-grad-norm", "inf",
                 "--grid.learning-rate", learning_rate]) == code
    captured = capsys.readouterr()
    assert last in (captured.out if code == EXIT_OK else captured.err).strip().splitlines()[-1]
    assert main(["report", out]) == code
    captured = capsys.readouterr()
    expected = "reported 2 of 2 runs" if code == EXIT_OK else "no finished run with a finite"
    assert expected in (captured.out if code == EXIT_OK else captured.err).splitlines()[-1]


def test_an_interrupted_sweep_exits_130_and_resumes(tmp_path):
    out = tmp_path / "int"
    # 40 updates a chunk (later options win): the 12 chunks take long enough that the
    # signal lands before the last one (CI once finished all 12 between two polls)
    cmd = [sys.executable, "-m", "reinforce_jax", "sweep", *TINY_ARGS, "--seeds", "12",
           "--max-runs-per-chunk", "1", "--num-updates", "40", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while len(list((out / "chunks").glob("*.npz"))) < 1:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_SIGNAL + signal.SIGINT == 130, (stdout, stderr)
    assert "re-run the same command to resume" in stderr.strip().splitlines()[-1]
    done = len(list((out / "chunks").glob("*.npz")))
    assert done < 12, "the signal came after the last chunk: nothing was interrupted"
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == EXIT_OK, again.stderr[-2000:]
    assert f"{done} of 12 runs already done" in again.stdout
    assert "done: 12 of 12 runs" in again.stdout.strip().splitlines()[-1]
    assert len(list((out / "chunks").glob("*.npz"))) == 12  # the resume wrote the rest


def _default_sigint():
    """In the child: Ctrl-C as from a terminal. A shell's background job (`cmd &`) starts
    with SIGINT ignored, and the child would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    # bad values, refused by our checks and by the argument parser
    (["train", "--learning-rate", "-1"], "learning_rate=-1.0; allowed"),
    (["train", "--num-envs", "many"], "Error parsing --num-envs"),
    (["train", "--rollout", "sideways"], "invalid choice 'sideways' for argument '--rollout'"),
    (["train", "--no-such-option", "1"], "Unrecognized options: --no-such-option"),
    (["report", "DIR", "--window", "0"], "window=0; allowed: an integer >= 1"),
    # bad paths
    (["train", "--out", "FILE"], "exists and is not a directory"),
    (["train", "--out", "FILE/run"], "cannot be created"),
    (["train", "--resume", "--out", "DIR/none"], "has no config.json and checkpoint.npz"),
    (["report", "DIR/none"], "has no sweep.json"),
    # bad combinations of options
    (["train", "--resume", "--overwrite", "--out", "DIR"], "--resume and --overwrite together"),
    (["train", "--baseline", "group", "--group-size", "5"], "group_size=5 with num_envs=48"),
    (["train", "--resume"], "--resume needs --out"),
    (["train", "--env", "Catch-bsuite", "--until-solved"], "needs --solved-return"),
    (["train", "--solved-return", "10"], "without --until-solved"),
    (["train", "--until-solved", "--solved-return", "nan"], "solved_return=nan; allowed"),
])
def test_each_class_of_bad_input_is_one_line_and_exit_2(argv, expected, tmp_path, capsys,
                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("not a directory")
    argv = [a.replace("DIR", str(tmp_path)) for a in argv]
    assert main(argv) == EXIT_USAGE
    line = _one_error_line(capsys)
    assert line.startswith("reinforce-jax: error: ") and expected in line, line
    assert not Path("runs").exists()  # nothing was written
