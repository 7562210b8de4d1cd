"""Checkpoints of training state: one ``.npz`` file, written atomically.

The format (documented so other tools can read it): the arrays ``leaf_00000 ...`` are the
leaves of the state pytree in ``jax.tree.leaves`` order, typed PRNG keys stored as their
raw ``jax.random.key_data``; ``extra/NAME`` holds caller arrays (metrics so far);
``meta`` is a JSON string (format version, leaf count, caller fields). Loading needs a
template with the same structure (e.g. ``jax.eval_shape`` of the init function), whose
shapes are checked leaf by leaf.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from reinforce_jax.io import write_npz

FORMAT_VERSION = 1


def _is_key(x) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def save_state(path: Path, state: Any, extra: dict[str, np.ndarray], meta: dict) -> None:
    """Write ``state`` (any pytree of arrays), ``extra`` arrays and ``meta`` to ``path``."""
    leaves = jax.tree.leaves(state)
    arrays = {f"leaf_{i:05d}": np.asarray(jax.random.key_data(x) if _is_key(x) else x)
              for i, x in enumerate(leaves)}
    arrays.update({f"extra/{k}": np.asarray(v) for k, v in extra.items()})
    meta = {"format_version": FORMAT_VERSION, "num_leaves": len(leaves), **meta}
    arrays["meta"] = np.asarray(json.dumps(meta))
    write_npz(Path(path), arrays)


def load_state(path: Path, template: Any) -> tuple[Any, dict[str, np.ndarray], dict]:
    """Read what ``save_state`` wrote; ``template`` gives the pytree structure and shapes."""
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        leaves, treedef = jax.tree.flatten(template)
        if meta.get("format_version") != FORMAT_VERSION or meta["num_leaves"] != len(leaves):
            raise ValueError(f"checkpoint {str(path)!r} does not match this configuration "
                             f"({meta.get('num_leaves')} leaves; expected {len(leaves)})")
        restored = []
        for i, like in enumerate(leaves):
            x = data[f"leaf_{i:05d}"]
            value = jax.random.wrap_key_data(x) if _is_key(like) else jnp.asarray(x)
            if value.shape != like.shape:
                raise ValueError(f"checkpoint {str(path)!r} leaf {i} has shape {value.shape}; "
                                 f"this configuration expects {like.shape}")
            restored.append(value)
        extra = {k[len("extra/"):]: data[k] for k in data.files if k.startswith("extra/")}
    return jax.tree.unflatten(treedef, restored), extra, meta
