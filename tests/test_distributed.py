"""One sweep, several processes: JAX's distributed runtime on 127.0.0.1 (2 and 3 local
processes), the deterministic chunk split, and a killed process that resumes.

The grid: 2 learning rates x 2 policy widths (two shape groups, two compiles) x 5 seeds
= 20 runs, in chunks of 3, 3, 3 and 1 run per group: 8 chunks. 3 processes divide neither
the runs nor the chunks (they own 3, 3 and 2 chunks).
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from reinforce_jax import TrainConfig, cli
from reinforce_jax import sweep as S
from reinforce_jax.distributed import Processes

NUM_CHUNKS = 8
TOL = dict(rtol=1e-5, atol=1e-6)  # float round-off at most (the same programs run)
WAIT = 300  # seconds: a bound on every process, so a hang fails instead of stalling CI
ARGS = ["--env", "CartPole-v1", "--num-envs", "4", "--num-updates", "6", "--horizon", "24",
        "--grid.learning-rate", "1e-3", "1e-2", "--grid.hidden-sizes", "8", "4",
        "--seeds", "5", "--max-runs-per-chunk", "3", "--chunk-updates", "3",
        "--checkpoint-every", "0", "--no-progress"]


def _sweep_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "reinforce_jax.cli", "sweep", *ARGS, "--out", str(out),
            *extra]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    """This environment without a launcher's variables (JAX would read them)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "OMPI_", "PMI_", "JAX_COORDINATOR"))}
    return {**env, "JAX_PLATFORMS": "cpu"}


class Launch:
    """N processes of one sweep on this machine, each writing to its own log file."""

    def __init__(self, out: Path, n: int, logs: Path):
        self.out, self.n, self.logs = out, n, logs
        self.port = _free_port()
        self.procs: dict[int, subprocess.Popen] = {}
        self.runs = {i: 0 for i in range(n)}
        for i in range(n):
            self.start(i)

    def start(self, i: int) -> None:
        self.runs[i] += 1
        log = open(self.logs / f"p{i}-run{self.runs[i]}.log", "w")
        self.procs[i] = subprocess.Popen(
            _sweep_cmd(self.out, "--coordinator-address", f"127.0.0.1:{self.port}",
                       "--num-processes", str(self.n), "--process-id", str(i)),
            stdout=log, stderr=subprocess.STDOUT, env=_env())

    def wait(self, i: int) -> tuple[int, str]:
        """Exit code and output of process ``i``'s latest run."""
        code = self.procs[i].wait(timeout=WAIT)
        return code, (self.logs / f"p{i}-run{self.runs[i]}.log").read_text()

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture
def launch(tmp_path):
    started = []

    def make(n: int) -> Launch:
        started.append(Launch(tmp_path / "out", n, tmp_path))
        return started[-1]

    yield make
    for run in started:
        run.stop_all()


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    """The reference: the same sweep in one process, through the same command."""
    out = tmp_path_factory.mktemp("single") / "out"
    assert cli.main(["sweep", *ARGS, "--out", str(out)]) == 0
    return out


def _written(log: str) -> list[str]:
    """The chunk names a process says it wrote (its 'wrote N chunk(s) (...)' line)."""
    m = re.search(r"wrote \d+ chunk\(s\)(?: \(([^)]*)\))?", log)
    assert m, log[-2000:]
    return m.group(1).split(", ") if m.group(1) else []


def _runs_in(chunk: str) -> int:
    return 1 if chunk.endswith("c00003") else 3


def _chunk_index() -> dict[str, int]:
    """Chunk name -> its number k over the whole sweep (owned by process k mod N)."""
    names = [f"g{g:03d}-c{c:05d}" for g in range(2) for c in range(4)]
    return {n: k for k, n in enumerate(names)}


def _assert_same_as_single(out: Path, single: Path) -> None:
    a, b = S.collect(out), S.collect(single)
    assert a.finished.all() and b.finished.all()
    np.testing.assert_array_equal(a.diverged_at, b.diverged_at)
    for name in a.metrics:
        np.testing.assert_allclose(a.metrics[name], b.metrics[name], **TOL)
    assert (out / "report.txt").read_text() == (single / "report.txt").read_text()


def test_chunk_split_is_a_partition():
    for count in range(1, 6):
        owners = [[i for i in range(count) if Processes(i, count).owns(k)]
                  for k in range(NUM_CHUNKS)]
        assert all(len(o) == 1 for o in owners)  # every chunk has exactly one owner
        assert [o[0] for o in owners] == [k % count for k in range(NUM_CHUNKS)]


@pytest.mark.parametrize("n", [2, 3])
def test_processes_share_one_sweep_and_equal_one_process(n, launch, single):
    run = launch(n)
    results = {i: run.wait(i) for i in range(n)}
    for i, (code, log) in results.items():
        assert code == 0, log[-3000:]
    out = run.out
    assert f"process 1 of {n} done" in results[1][1].strip().splitlines()[-1]
    assert "process 0 writes the report" in results[1][1]
    # each process wrote exactly its own chunks, and together every chunk once
    index, seen = _chunk_index(), []
    for i, (_, log) in results.items():
        mine = _written(log)
        assert all(index[c] % n == i for c in mine), (i, mine)
        seen += mine
    assert sorted(seen) == sorted(index)
    assert sorted(f.stem for f in (out / "chunks").glob("*.npz")) == sorted(index)
    # process 0 alone wrote the identity file, the results and the report
    assert {"sweep.json", "results.npz", "report.txt"} <= {f.name for f in out.iterdir()}
    _assert_same_as_single(out, single)


def test_killed_process_resumes_and_nothing_is_lost_or_written_twice(launch, single):
    n, victim = 3, 1
    run = launch(n)
    index = _chunk_index()
    own = sorted(c for c, k in index.items() if k % n == victim)  # g000-c00001 first
    chunks = run.out / "chunks"
    deadline = time.time() + WAIT
    while not (chunks / f"{own[0]}.npz").exists():
        assert time.time() < deadline and run.procs[victim].poll() is None
        time.sleep(0.01)
    run.procs[victim].send_signal(signal.SIGKILL)  # no clean-up at all
    run.procs[victim].wait()
    done_by_victim = [c for c in own if (chunks / f"{c}.npz").exists()]
    assert done_by_victim and len(done_by_victim) < len(own), "the kill must land mid-sweep"
    # the others finish their own chunks: process 2 exits, process 0 waits for process 1
    code, log2 = run.wait(2)
    assert code == 0, log2[-3000:]
    others = [c for c, k in index.items() if k % n != victim]
    while not all((chunks / f"{c}.npz").exists() for c in others):
        assert time.time() < deadline and run.procs[0].poll() is None
        time.sleep(0.05)
    time.sleep(1)  # process 0, its own chunks done, keeps waiting for the killed one's
    assert run.procs[0].poll() is None, "process 0 waits for the killed process's chunks"
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in chunks.glob("*.npz")}
    # the same command again resumes the killed process's chunks; process 0 then reports
    run.start(victim)
    code, log1 = run.wait(victim)
    assert code == 0, log1[-3000:]
    runs_done = sum(map(_runs_in, done_by_victim))
    runs_own = sum(map(_runs_in, own))
    assert f"process 1 of 3: resuming {run.out}: {runs_done} of {runs_own} runs" in log1
    code, log0 = run.wait(0)
    assert code == 0, log0[-3000:]
    # nothing written twice: files present before the re-run are untouched, and the
    # chunks each run wrote are disjoint and make up the whole sweep
    after = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in chunks.glob("*.npz")}
    assert all(after[name] == stat for name, stat in before.items())
    wrote = [*_written(log0), *_written(log2), *done_by_victim, *_written(log1)]
    assert sorted(wrote) == sorted(index)
    assert not list((run.out / "ckpt").iterdir())
    _assert_same_as_single(run.out, single)


def test_split_without_the_runtime_and_process_0_gives_up_on_a_missing_peer(single, tmp_path):
    """run_sweep's split alone (no jax.distributed): process 0 trains its chunks, waits
    for process 1 a bounded time and says who is missing; process 1 then fills the gap."""
    base = TrainConfig(env="CartPole-v1", num_envs=4, num_updates=6, horizon=24)
    grid = {"learning_rate": [1e-3, 1e-2], "hidden_sizes": [(8,), (4,)]}
    kw = dict(max_runs_per_chunk=3, chunk_updates=3, checkpoint_every=0, progress=False)
    out = tmp_path / "out"
    first = S.run_sweep(base, grid, 5, out, processes=Processes(0, 2), peer_timeout=0.5, **kw)
    assert first.missing_from == [1] and first.finished.sum() == 12  # 3+3+3+3 runs
    assert any("gave up after 0.5s" in m for m in first.messages)
    other = S.run_sweep(base, grid, 5, out, processes=Processes(1, 2), **kw)
    assert other.chunks_written == ["g000-c00001", "g000-c00003", "g001-c00001", "g001-c00003"]
    last = S.run_sweep(base, grid, 5, out, processes=Processes(0, 2), **kw)
    assert last.chunks_written == [] and last.missing_from == [] and last.finished.all()
    ref = S.collect(single)
    for name in ref.metrics:
        np.testing.assert_allclose(last.metrics[name], ref.metrics[name], **TOL)


def test_other_processes_wait_for_sweep_json_and_refuse_a_different_sweep(single, tmp_path):
    base = TrainConfig(env="CartPole-v1", num_envs=4, num_updates=6, horizon=24)
    with pytest.raises(ValueError, match="no sweep.json from process 0 after 0.3s"):
        S.run_sweep(base, {}, 5, tmp_path / "none", processes=Processes(1, 2),
                    peer_timeout=0.3, progress=False)
    with pytest.raises(ValueError, match="holds a different sweep .*grid.*; empty it"):
        S.run_sweep(base, {"learning_rate": [1e-3]}, 5, single, processes=Processes(1, 2),
                    progress=False)


@pytest.mark.parametrize("extra, match", [
    (["--num-processes", "2", "--process-id", "2"], "process_id=2; allowed: 0..1"),
    (["--num-processes", "0"], "num_processes=0; allowed: an integer >= 1"),
    (["--coordinator-address", "localhost"], "coordinator_address='localhost'; allowed"),
    (["--num-processes", "2", "--process-id", "0", "--overwrite"], "--overwrite with"),
    (["--num-processes", "2", "--process-id", "0", "--seeds", "0"], "seeds=0; allowed"),
])
def test_bad_distributed_settings_are_one_line_before_joining(extra, match, tmp_path,
                                                               capsys, monkeypatch):
    import jax

    monkeypatch.setattr(jax.distributed, "initialize",
                        lambda *a, **k: pytest.fail("joined before validating"))
    assert cli.main(["sweep", *ARGS, "--out", str(tmp_path / "x"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


def test_distributed_without_settings_is_one_line(tmp_path):
    proc = subprocess.run(_sweep_cmd(tmp_path / "x", "--distributed"), env=_env(),
                          capture_output=True, text=True, timeout=WAIT)
    assert proc.returncode == 2, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "distributed settings incomplete" in last and "--coordinator-address" in last


def test_a_sweep_needs_one_shared_out(tmp_path, capsys):
    assert cli.main(["sweep", *ARGS, "--num-processes", "2", "--process-id", "1"]) == 2
    assert "--out is missing" in capsys.readouterr().err
