"""``reinforce-jax parity FILE.py``: check a JAX port against its torch code, from a file.

The file is ordinary Python that defines the two sides under these names (the arguments
of ``parity.compare``):

- ``torch_model``: the ``torch.nn.Module``;
- ``torch_loss(model, batch)``: its loss, a scalar tensor;
- ``jax_model``: a flax module (then also ``example_input``, its ``init`` input) or a
  params pytree;
- ``jax_loss(params, batch)`` or ``jax_loss(params, batch, conventions)``: the port's loss;
- ``batches``: a list of batches (pytrees of numpy arrays) or ``make(rng) -> batch``.

and may define any other keyword of ``compare``: ``mapping``, ``steps``, ``optimizer``,
``lr``, ``weight_decay``, ``clip``, ``torch_clip``, ``conventions``, ``seed``, ``jit``.
Importing torch is deferred to the command itself, so ``reinforce-jax`` starts without it.
"""

from __future__ import annotations

import importlib.util
import inspect
import json as json_lib
import sys
import traceback
from pathlib import Path
from typing import Annotated, Literal

import tyro

EXIT_DIFFERS = 5  # the two sides differ (0: they agree, 2: bad input, as every command)
REQUIRED = ("torch_model", "torch_loss", "jax_model", "jax_loss", "batches")


def load_sides(path: Path) -> dict:
    """Run the file and return compare's arguments from its names. A missing name, or an
    exception while the file runs (its traceback printed), is a ``ValueError``."""
    path = Path(path)
    if path.suffix != ".py" or not path.is_file():
        raise ValueError(f"file={str(path)!r}; allowed: an existing .py file")
    name = f"_parity_port_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses in the file look their module up
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: show where, then fail as bad input
        traceback.print_exc()
        raise ValueError(f"{path} raised {type(err).__name__}: {err}") from None
    finally:
        sys.modules.pop(name, None)
    from parity.comparison import compare

    known = [p for p in inspect.signature(compare).parameters if p not in ("dtypes",
                                                                           "find_traps")]
    missing = [n for n in REQUIRED if not hasattr(module, n)]
    if missing:
        raise ValueError(f"{path} does not define {', '.join(missing)}; a parity file "
                         f"defines {', '.join(REQUIRED)} (README, 'Parity with PyTorch')")
    return {n: getattr(module, n) for n in known if hasattr(module, n)}


def parity_cmd(
    file: Annotated[Path, tyro.conf.Positional],
    json: Path | None = None,
    seed: int | None = None,
    steps: int | None = None,
    dtype: tuple[Literal["float64", "float32"], ...] = ("float64", "float32"),
    traps: bool = True,
):
    """Check a JAX port of a torch loss: gradients and optimizer steps, per parameter.

    Exit code 0 when every row agrees, 5 when the two sides differ, 2 for a bad file.

    Args:
      file: a .py file defining torch_model, torch_loss, jax_model, jax_loss, batches.
      json: also write the report as JSON here.
      seed: seed of a batch function's rng (default: the file's `seed`, else 0).
      steps: optimizer steps (default: the file's `steps`, else 50).
      dtype: the dtypes to check.
      traps: when float64 differs, look for the known trap that explains it.
    """
    from reinforce_jax.cli import EXIT_OK, Exit

    try:
        import torch
    except ImportError:
        raise ValueError("reinforce-jax parity needs torch: pip install "
                         "'reinforce_jax[parity]'") from None
    from parity.comparison import compare

    if steps is not None and steps < 0:
        raise ValueError(f"steps={steps!r}; allowed: an integer >= 0")
    if json is not None and not Path(json).parent.is_dir():
        raise ValueError(f"--json {str(json)!r}: its directory does not exist")
    kwargs = load_sides(file)
    if seed is not None:
        kwargs["seed"] = seed
    if steps is not None:
        kwargs["steps"] = steps
    torch.set_num_threads(1)
    report = compare(**kwargs, dtypes=tuple(dict.fromkeys(dtype)), find_traps=traps)
    print(f"parity {file}: seed {kwargs.get('seed', 0)}, {report.steps} steps; torch -> "
          f"flax: " + ", ".join(f"{t} -> {f}" for t, f in report.mapping.items()))
    for line in report.lines():
        print(line)
    if json is not None:
        Path(json).write_text(json_lib.dumps(
            {"file": str(file), "seed": kwargs.get("seed", 0), **report.to_dict()},
            indent=2, default=repr))
    rows = report.rows
    if report.passed:
        return Exit(EXIT_OK, f"the two sides agree: {len(rows)} rows within tolerance")
    failed = sum(not r.passed for r in rows)
    found = report.explained_by
    hint = (f"; they agree with {', '.join(f'{t.field}={t.value!r}' for t in found)}"
            if found else "")
    return Exit(EXIT_DIFFERS, f"the two sides differ: {failed} of {len(rows)} rows fail{hint}")
