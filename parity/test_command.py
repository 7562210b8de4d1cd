"""``reinforce-jax parity FILE.py`` on the example port, on a port with one convention
wrong, and on files that are not parity files."""

import json
from pathlib import Path

from parity.command import EXIT_DIFFERS
from reinforce_jax.cli import main

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "torch_reinforce_port.py"


def test_the_example_port_agrees(tmp_path, capsys):
    out = tmp_path / "report.json"
    assert main(["parity", str(EXAMPLE), "--steps", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "affine1 -> params/Dense_1" in printed  # found by shape: flax made Dense_0 first
    assert "16 passed, 0 failed" in printed and "the two sides agree" in printed
    report = json.loads(out.read_text())
    assert report["passed"] and report["steps"] == 3 and len(report["rows"]) == 16
    assert report["conventions"]["reduction"] == "sum" and report["traps"] is None


def test_a_wrong_convention_fails_and_is_named(tmp_path, capsys):
    port = tmp_path / "port.py"
    port.write_text(EXAMPLE.read_text().replace(
        'Conventions(norm_eps=EPS, reduction="sum")',
        'Conventions(norm_eps=EPS, reduction="sum", std_ddof=0)'))
    out = tmp_path / "report.json"
    code = main(["parity", str(port), "--steps", "2", "--dtype", "float64", "--json", str(out)])
    assert code == EXIT_DIFFERS == 5
    captured = capsys.readouterr()
    assert "trap found: your torch code matches ours with std_ddof=1" in captured.out
    assert "the two sides differ" in captured.err and "std_ddof=1" in captured.err
    report = json.loads(out.read_text())
    assert not report["passed"] and report["explained_by"] == ["std_ddof=1"]
    assert report["runs"][0]["diverged_at"] == 1


def test_a_file_without_the_names_is_bad_input(tmp_path, capsys):
    port = tmp_path / "half.py"
    port.write_text("import torch\ntorch_model = torch.nn.Linear(2, 2)\n")
    assert main(["parity", str(port)]) == 2
    err = capsys.readouterr().err
    assert "does not define torch_loss, jax_model, jax_loss, batches" in err
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('no data here')\n")
    assert main(["parity", str(broken)]) == 2
    assert "raised RuntimeError: no data here" in capsys.readouterr().err
    assert main(["parity", str(tmp_path / "missing.py")]) == 2
