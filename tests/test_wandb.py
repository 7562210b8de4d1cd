"""--log wandb, checked offline: one W&B run per seed, its history read back from the
run file W&B writes."""

import json

import numpy as np
import pytest

from reinforce_jax.cli import EXIT_OK, EXIT_USAGE, main

TINY_ARGS = ["--num-envs", "4", "--num-updates", "4", "--horizon", "16", "--hidden-sizes", "8",
             "--chunk-updates", "2", "--no-progress"]


def _records(path):
    """The protobuf records of a ``.wandb`` file: a 7-byte header, then a leveldb-style
    log of 32 KiB blocks, each record a 7-byte header (checksum, length, kind: 1 whole,
    2 first, 3 middle, 4 last piece) and its bytes."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, pending, records = path.read_bytes(), 7, 32768, b"", []
    assert data[:4] == b":W&B"
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        piece, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = piece if kind in (1, 2) else pending + piece
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def test_wandb_offline_logs_one_run_per_seed_stepped_by_env_steps(tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "run"
    assert main(["train", "--seeds", "2", "--out", str(out), "--log", "wandb",
                 *TINY_ARGS]) == EXIT_OK
    files = sorted((out / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 2
    metrics = np.load(out / "metrics.npz")
    steps = np.cumsum(metrics["env_steps"], axis=1)
    by_seed = {}
    for f in files:
        records = _records(f)
        name = next(r.run.display_name for r in records if r.HasField("run"))
        history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json)
                    for i in r.history.item} | {"step": r.history.step.num}
                   for r in records if r.HasField("history")]
        by_seed[int(name.rsplit("seed_", 1)[1])] = history
    assert sorted(by_seed) == [0, 1]
    for seed, history in by_seed.items():
        assert [h["update"] for h in history] == [1, 2, 3, 4]
        assert [h["step"] for h in history] == steps[seed].tolist()
        np.testing.assert_allclose([h["loss"] for h in history], metrics["loss"][seed],
                                   rtol=1e-6)


def test_wandb_without_the_package_is_one_line(tmp_path, monkeypatch, capsys):
    import builtins

    real_import = builtins.__import__

    def no_wandb(name, *args, **kwargs):
        if name == "wandb":
            raise ImportError("no wandb here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_wandb)
    assert main(["train", "--out", str(tmp_path / "x"), "--log", "wandb",
                 *TINY_ARGS]) == EXIT_USAGE
    assert 'pip install "reinforce_jax[wandb]"' in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before anything was written


def test_wandb_without_credentials_is_refused_before_anything_runs(tmp_path, monkeypatch,
                                                                   capsys):
    pytest.importorskip("wandb")
    for name in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["train", "--out", str(tmp_path / "x"), "--log", "wandb",
                 *TINY_ARGS]) == EXIT_USAGE
    assert "log='wandb' without W&B credentials" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
