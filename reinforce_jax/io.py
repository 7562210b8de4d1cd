"""Run directories: refuse to clobber, write atomically, and save a run's files."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np


def prepare_out_dir(out: Path, overwrite: bool) -> Path:
    """Create ``out``; an existing non-empty directory is refused unless ``overwrite``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise ValueError(f"--out {str(out)!r} exists and is not empty; pass --overwrite to "
                             "replace it, or choose another directory")
        shutil.rmtree(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {str(out)!r} cannot be created: {err.strerror}") from None
    return out


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp)`` on a temp file beside ``path``, then rename it to ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: Path, data: Any) -> None:
    """Write JSON via a temp file and rename, so a crash never leaves half a file."""

    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(jsonable(data), f, indent=2, allow_nan=False)
            f.write("\n")

    atomic_write(path, write)


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)

    atomic_write(path, write)


def jsonable(x: Any) -> Any:
    """``x`` as plain JSON types: dataclasses and numpy values converted, NaN -> None and
    +-inf -> "inf"/"-inf" (JSON has neither; ``max_grad_norm=inf`` must read back)."""
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return jsonable(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        x = float(x)
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
        return x if np.isfinite(x) else None  # JSON has no NaN: diverged values become null
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    return x


def from_jsonable(x: Any) -> Any:
    """Undo ``jsonable`` for config values: lists -> tuples, "inf"/"-inf" -> floats."""
    if isinstance(x, dict):
        return {k: from_jsonable(v) for k, v in x.items()}
    if isinstance(x, list):
        return tuple(from_jsonable(v) for v in x)
    return float(x) if x in ("inf", "-inf") else x
