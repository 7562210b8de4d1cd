"""Weight conversion between PyTorch ``nn.Linear`` / ``nn.GRU`` state_dicts and our flax
params.

torch stores ``Linear.weight`` as [out, in]; flax stores ``Dense.kernel`` as [in, out],
so every weight is transposed. A mapping names, for each torch layer prefix, the flax
module that receives it, or a list of ``(flax_name, row_slice)`` when one torch layer
feeds several flax heads (the FourCurves bandit's single 8-output layer -> mean and
log_std heads).

Example::

    mapping = {"net.0": "hidden_0", "net.2": "hidden_1", "net.4": "logits"}
    params = torch_to_flax(torch_model.state_dict(), mapping)   # {"params": {...}}
    state_dict = flax_to_torch(params, mapping)                 # name -> np.ndarray

A one-layer ``nn.GRU`` under a prefix maps onto our ``policies.GRU`` cell: torch stacks
the rows of the r, z and n gates in that order in ``weight_ih_l0`` [3H, in] and
``weight_hh_l0`` [3H, H], and they split into the Dense layers ``ir, iz, in`` and
``hr, hz, hn`` (each with its bias, as torch has).

Works on anything array-like (torch tensors, numpy, jax); torch is not imported here.
The same mapping converts gradients: pass ``{name: p.grad for name, p in named_parameters()}``
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence, Union

import numpy as np

Target = Union[str, Sequence[tuple[str, slice]]]


def _to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    return x.astype(dtype) if dtype is not None else x


GRU_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def _gru_to_flax(state_dict: Mapping[str, Any], prefix: str, dtype: Any) -> dict:
    w_ih, w_hh, b_ih, b_hh = (_to_numpy(state_dict[f"{prefix}.{k}"], dtype)
                              for k in GRU_KEYS)
    H = w_hh.shape[1]
    cell = {}
    for i, g in enumerate("rzn"):
        rows = slice(i * H, (i + 1) * H)
        cell[f"i{g}"] = {"kernel": np.ascontiguousarray(w_ih[rows].T), "bias": b_ih[rows]}
        cell[f"h{g}"] = {"kernel": np.ascontiguousarray(w_hh[rows].T), "bias": b_hh[rows]}
    return cell


def _gru_to_torch(cell: Mapping[str, Any], prefix: str, dtype: Any) -> dict:
    def stack(side, part):
        return np.concatenate([_to_numpy(cell[f"{side}{g}"][part], dtype).T if part == "kernel"
                               else _to_numpy(cell[f"{side}{g}"][part], dtype) for g in "rzn"])
    return {f"{prefix}.weight_ih_l0": stack("i", "kernel"),
            f"{prefix}.weight_hh_l0": stack("h", "kernel"),
            f"{prefix}.bias_ih_l0": stack("i", "bias"), f"{prefix}.bias_hh_l0": stack("h", "bias")}


def torch_to_flax(state_dict: Mapping[str, Any], mapping: Mapping[str, Target],
                  dtype: Any = None) -> dict:
    """Build ``{"params": {flax_name: {"kernel", "bias"}}}`` from a torch state_dict.

    Raises ``KeyError`` naming a torch layer the state_dict lacks, and ``ValueError``
    naming torch entries the mapping does not cover (so nothing is silently dropped).
    """
    params: dict[str, dict[str, np.ndarray]] = {}
    used = set()
    for prefix, target in mapping.items():
        if f"{prefix}.weight_ih_l0" in state_dict:  # a one-layer nn.GRU
            params[target] = _gru_to_flax(state_dict, prefix, dtype)
            used.update(f"{prefix}.{k}" for k in GRU_KEYS)
            continue
        wkey, bkey = f"{prefix}.weight", f"{prefix}.bias"
        if wkey not in state_dict:
            raise KeyError(f"torch layer {prefix!r} not in state_dict; has: {sorted(state_dict)}")
        weight = _to_numpy(state_dict[wkey], dtype)
        bias = _to_numpy(state_dict[bkey], dtype) if bkey in state_dict else None
        used.update({wkey, bkey})
        parts = [(target, slice(None))] if isinstance(target, str) else list(target)
        for name, rows in parts:
            entry = {"kernel": np.ascontiguousarray(weight[rows].T)}
            if bias is not None:
                entry["bias"] = bias[rows].copy()
            params[name] = entry
    extra = sorted(set(state_dict) - used)
    if extra:
        raise ValueError(f"state_dict entries not covered by the mapping: {extra}")
    return {"params": params}


def flax_to_torch(params: Mapping[str, Any], mapping: Mapping[str, Target],
                  dtype: Any = None) -> dict[str, np.ndarray]:
    """Inverse of ``torch_to_flax``: ``{"prefix.weight": [out, in], "prefix.bias": [out]}``.

    Load into a torch module with
    ``module.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})``.
    """
    tree = params["params"] if "params" in params else params
    out: dict[str, np.ndarray] = {}
    for prefix, target in mapping.items():
        if isinstance(target, str) and "ir" in tree.get(target, {}):  # a GRU cell
            out.update(_gru_to_torch(tree[target], prefix, dtype))
            continue
        names = [target] if isinstance(target, str) else [name for name, _ in target]
        kernels = [_to_numpy(tree[n]["kernel"], dtype).T for n in names]
        out[f"{prefix}.weight"] = np.ascontiguousarray(np.concatenate(kernels, axis=0))
        if all("bias" in tree[n] for n in names):
            out[f"{prefix}.bias"] = np.concatenate([_to_numpy(tree[n]["bias"], dtype)
                                                    for n in names])
    return out
