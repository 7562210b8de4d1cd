"""Compare your own torch REINFORCE code with its JAX port: ``compare(...) -> Report``.

Given a torch module and loss, a flax module (or a params pytree) and a JAX loss, and
batches, ``compare`` copies the torch weights into the JAX parameters, then checks in
float64 and float32 (the suite's tolerances, ``parity.cases.TOLERANCES``):

- the gradient of one loss, per parameter leaf (after clipping, when ``clip`` is set);
- the parameters along ``steps`` optimizer steps (``torch.optim.Adam`` against
  ``optax.adam``, equal to float64 round-off), per leaf, and the first step at which the
  two trajectories part by more than the tolerance.

When float64 disagrees it re-runs float64 with each known trap (``parity.conventions``)
switched on the JAX side, and reports which switch makes the two sides agree.

Weights are matched automatically: torch ``Linear``, ``Conv1d/2d/3d`` and one-layer
``GRU`` layers, and bare ``nn.Parameter`` s, in module order, against flax layers (dicts
with a ``kernel``; GRU cells with ``ir iz in hr hz hn``) and other leaves in parameter
order, by shape. Pass ``mapping`` when that is ambiguous (the error says so).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch

from parity.cases import TOLERANCES
from parity.conventions import EXPLAIN, TORCH, Conventions, flipped
from reinforce_jax.convert import torch_to_flax

GRU_CELL = ("ir", "iz", "in", "hr", "hz", "hn")
TRAP_FIELDS = ("std_ddof", "clip_eps", "log_prob", "reduction", "gamma_t", "stop_gradient",
               "weight_layout")
TRAP_STEPS = 2  # a trap re-run checks the gradient and this many steps
LOSS_FIELDS = ("std_ddof", "log_prob", "reduction", "gamma_t", "stop_gradient")


# ---------------------------------------------------------------- the weight mapping
@dataclass(frozen=True)
class _Layer:
    """One torch layer or bare parameter, or one flax layer or bare leaf."""

    name: str  # torch: module prefix or parameter name; flax: "a/b" path
    kind: str  # "linear" (flax: "dense"), "conv", "gru", "param"
    shape: tuple  # the flax-layout shape that must match: kernel / leaf shape
    has_bias: bool = False


@dataclass(frozen=True)
class Link:
    """One torch layer or parameter copied into one flax layer or leaf."""

    torch: str  # module prefix ("net.0") or full parameter name ("log_std")
    flax: str  # "a/b" path under the params tree, or several for a row split
    kind: str
    rows: tuple = ()  # for a row split: ((flax path, slice), ...)


_TORCH_KINDS = {nn_cls: kind for kind, classes in {
    "linear": (torch.nn.Linear,),
    "conv": (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d),
    "gru": (torch.nn.GRU,)}.items() for nn_cls in classes}


def _kind(module: Any) -> str | None:
    return next((k for cls, k in _TORCH_KINDS.items() if isinstance(module, cls)), None)


def _owned(prefix: str, name: str) -> bool:
    """Whether parameter ``name`` belongs directly to the module at ``prefix``."""
    rest = name[len(prefix) + 1:] if prefix else name
    return (not prefix or name.startswith(prefix + ".")) and "." not in rest


def _conv_to_flax(w: np.ndarray) -> np.ndarray:
    # torch [out, in, *kernel] -> flax [*kernel, in, out]
    return np.ascontiguousarray(np.transpose(w, tuple(range(2, w.ndim)) + (1, 0)))


def torch_layers(model: torch.nn.Module) -> list[_Layer]:
    """The model's Linear/Conv/GRU layers and bare parameters, in registration order."""
    out = []
    for prefix, module in model.named_modules():
        kind = _kind(module)
        if kind == "gru":
            if module.num_layers != 1 or module.bidirectional:
                raise ValueError(f"torch layer {prefix!r}: a GRU with num_layers="
                                 f"{module.num_layers}, bidirectional={module.bidirectional}; "
                                 "allowed: one layer, one direction")
            H, I = module.hidden_size, module.input_size
            out.append(_Layer(prefix, "gru", ((I, H), (H, H)), module.bias))
        elif kind is not None:
            w = module.weight
            shape = tuple(w.shape[::-1]) if kind == "linear" else _conv_to_flax(
                np.empty(w.shape, np.int8)).shape
            out.append(_Layer(prefix, kind, shape, module.bias is not None))
        else:
            own = list(module.named_parameters(recurse=False))
            if own and type(module).__module__.startswith("torch.nn"):
                raise ValueError(
                    f"torch layer {prefix!r} ({type(module).__name__}) is not one the automatic "
                    "mapping knows (Linear, Conv1d/2d/3d, GRU, bare nn.Parameter); pass "
                    "mapping={torch name: flax path}")
            for name, p in own:
                full = f"{prefix}.{name}" if prefix else name
                out.append(_Layer(full, "param", tuple(p.shape)))
    return out


def _walk(tree: Mapping, path: tuple = ()):
    for key, value in tree.items():
        yield path + (str(key),), value


def flax_layers(params: Mapping) -> list[_Layer]:
    """Dense/Conv layers (a dict with a ``kernel``), GRU cells and other leaves of a params
    tree, in the tree's own order (flax's creation order)."""
    out = []

    def visit(tree, path):
        for sub, value in _walk(tree, path):
            name = "/".join(sub)
            if isinstance(value, Mapping) and set(GRU_CELL) <= set(value):
                I, H = np.shape(value["ir"]["kernel"])
                if not all("bias" in value[g] for g in GRU_CELL):
                    raise ValueError(
                        f"flax GRU cell {name!r} has no bias on some of {', '.join(GRU_CELL)} "
                        "(flax's nn.GRUCell leaves hr, hz without): torch's GRU has two "
                        "biases per gate, which an optimizer moves apart, so the "
                        "trajectories cannot agree; use a cell with a bias on all six Dense "
                        "layers (reinforce_jax.policies.GRU)")
                out.append(_Layer(name, "gru", ((I, H), (H, H)), True))
            elif isinstance(value, Mapping) and "kernel" in value and not isinstance(
                    value["kernel"], Mapping):
                k = tuple(np.shape(value["kernel"]))
                out.append(_Layer(name, "linear" if len(k) == 2 else "conv", k,
                                  "bias" in value))
            elif isinstance(value, Mapping):
                visit(value, sub)
            else:
                out.append(_Layer(name, "param", tuple(np.shape(value))))

    visit(params, ())
    return out


def _describe(layers: Sequence[_Layer]) -> str:
    return ", ".join(f"{x.name} ({x.kind} {x.shape})" for x in layers) or "none"


def auto_mapping(model: torch.nn.Module, params: Mapping) -> list[Link]:
    """Pair torch layers with flax layers: in order when every pair's kind and shape agree,
    otherwise by (kind, shape) when each occurs once on each side. Anything else is
    ambiguous and raises ``ValueError`` naming the layers, for an explicit ``mapping``."""
    ts, fs = torch_layers(model), flax_layers(params)
    if len(ts) == len(fs) and all(t.kind == f.kind and t.shape == f.shape
                                  and t.has_bias == f.has_bias for t, f in zip(ts, fs)):
        return [Link(t.name, f.name, t.kind) for t, f in zip(ts, fs)]
    key = lambda x: (x.kind, x.shape, x.has_bias)  # noqa: E731
    links, problems = [], []
    for sig in dict.fromkeys(key(x) for x in ts + fs):
        t_same = [t for t in ts if key(t) == sig]
        f_same = [f for f in fs if key(f) == sig]
        if len(t_same) == len(f_same) == 1:
            links.append(Link(t_same[0].name, f_same[0].name, sig[0]))
        elif not f_same:
            problems.append(f"no flax layer for torch {_describe(t_same)}")
        elif not t_same:
            problems.append(f"no torch layer for flax {_describe(f_same)}")
        else:
            problems.append(f"ambiguous: torch {_describe(t_same)} and flax "
                            f"{_describe(f_same)} share a shape and their orders differ")
    if problems:
        raise ValueError(
            "cannot map the torch weights onto the JAX parameters automatically: "
            + "; ".join(problems) + f". torch: {_describe(ts)}. flax: {_describe(fs)}. Pass "
            "mapping={torch layer or parameter name: flax path ('a/b')}")
    return links


def explicit_mapping(model: torch.nn.Module, mapping: Mapping[str, Any]) -> list[Link]:
    """Links from ``{torch name: flax path}``. A key is a Linear/Conv/GRU prefix (its
    weights are converted) or a full parameter name (copied as it is); a value is a
    "a/b" path, or ``[(path, row_slice), ...]`` to split one Linear's rows over several
    flax layers (``reinforce_jax.convert``'s form)."""
    modules = dict(model.named_modules())
    names = dict(model.named_parameters())
    links = []
    for key, target in mapping.items():
        module = modules.get(key)
        kind = _kind(module)
        if module is not None and kind is not None:
            if isinstance(target, str):
                links.append(Link(key, target, kind))
            elif kind == "linear":
                rows = tuple((str(p), s) for p, s in target)
                links.append(Link(key, ",".join(p for p, _ in rows), kind, rows))
            else:
                raise ValueError(f"mapping[{key!r}]={target!r}: a row split is for Linear "
                                 "layers; allowed: a flax path")
        elif key in names:
            links.append(Link(key, str(target), "param"))
        else:
            layers = _describe(torch_layers(model))
            raise ValueError(f"mapping key {key!r} is neither a Linear/Conv/GRU layer nor a "
                             f"parameter of the torch model; layers: {layers}")
    return links


def _set(tree: dict, path: str, value: np.ndarray) -> None:
    *parents, last = path.split("/")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[last] = value


def _flat(tree: Mapping, path: tuple = ()) -> dict[str, Any]:
    out = {}
    for sub, value in _walk(tree, path):
        if isinstance(value, Mapping):
            out.update(_flat(value, sub))
        else:
            out["/".join(sub)] = value
    return out


def to_flax(tensors: Mapping[str, Any], links: Sequence[Link], template: Mapping,
            dtype: Any, weight_layout: str = "in_out") -> dict:
    """torch tensors (parameters, gradients) by parameter name -> a tree shaped like
    ``template``. ``weight_layout="out_in"`` copies square Linear weights untransposed."""
    out: dict = {}
    for link in links:
        if link.kind == "param":
            _set(out, link.flax, np.asarray(_np(tensors[link.torch]), dtype))
            continue
        # the layer's own tensors under one prefix, "layer" (the root module's is "")
        cut = len(link.torch) + 1 if link.torch else 0
        sub = {f"layer.{k[cut:]}": _np(v) for k, v in tensors.items()
               if _owned(link.torch, k)}
        w = sub.get("layer.weight")
        if link.kind == "conv":
            _set(out, f"{link.flax}/kernel", _conv_to_flax(w).astype(dtype))
            if "layer.bias" in sub:
                _set(out, f"{link.flax}/bias", sub["layer.bias"].astype(dtype))
            continue
        if link.kind == "linear" and weight_layout == "out_in" and w.shape[0] == w.shape[1]:
            sub["layer.weight"] = w.T  # torch_to_flax transposes it back
        target = list(link.rows) if link.rows else "x"
        converted = torch_to_flax(sub, {"layer": target}, dtype)["params"]
        for name, entry in converted.items():
            path = link.flax if name == "x" else name
            for leaf, value in _flat(entry).items():
                _set(out, f"{path}/{leaf}", value)
    want, got = _flat(template), _flat(out)
    missing = sorted(set(want) - set(got))
    if missing:
        raise ValueError(f"JAX parameters that no torch weight fills: {missing}; add them "
                         "to mapping")
    extra = sorted(set(got) - set(want))
    if extra:
        raise ValueError(f"mapping targets that are not JAX parameters: {extra}; "
                         f"parameters: {sorted(want)}")
    for k in want:
        if np.shape(want[k]) != np.shape(got[k]):
            raise ValueError(f"JAX parameter {k!r} has shape {np.shape(want[k])}; the torch "
                             f"weight copied into it has {np.shape(got[k])}")
    return _rebuild(template, got)


def _rebuild(template: Mapping, flat: Mapping[str, Any], path: tuple = ()) -> dict:
    """A dict shaped like ``template`` (its key order kept) with the leaves of ``flat``."""
    out = {}
    for sub, value in _walk(template, path):
        out[sub[-1]] = (_rebuild(value, flat, sub) if isinstance(value, Mapping)
                        else flat["/".join(sub)])
    return out


def _np(x: Any) -> np.ndarray:
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def _check_covered(model: torch.nn.Module, links: Sequence[Link]) -> None:
    covered = set()
    for link in links:
        if link.kind == "param":
            covered.add(link.torch)
        else:
            covered.update(n for n, _ in model.named_parameters() if _owned(link.torch, n))
    left = [n for n, _ in model.named_parameters() if n not in covered]
    if left:
        raise ValueError(f"torch parameters the mapping leaves out: {left}")


# ---------------------------------------------------------------- the report
@dataclass
class Row:
    """One parameter leaf in one dtype: its gradient, or its value after the steps."""

    parameter: str
    dtype: str
    check: str  # "grad" or "N steps"
    max_abs: float
    max_rel: float
    tolerance: str
    passed: bool


@dataclass
class Run:
    """One dtype under one set of conventions."""

    dtype: str
    conventions: Conventions
    rows: list[Row]
    loss_torch: float
    loss_jax: float
    step_max_abs: list[float]  # after each step, the largest error over all leaves
    diverged_at: int | None  # the first step (1-based) past the tolerance, or None
    moved: float = float("nan")  # the largest parameter change over the steps (0: vacuous)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)

    def max_abs(self, check: str) -> float:
        return max((r.max_abs for r in self.rows if r.check.endswith(check)), default=0.0)


@dataclass
class Trap:
    """One convention flipped on the JAX side, re-run in float64."""

    field: str
    value: Any
    explanation: str
    passed: bool
    grad_max_abs: float
    steps_max_abs: float


@dataclass
class Report:
    """What ``compare`` found. ``passed``: every row of every dtype within tolerance."""

    runs: list[Run]
    mapping: dict[str, str]
    steps: int
    traps: list[Trap] | None = None  # None: not searched (float64 agreed, or turned off)
    trap_note: str = ""
    conventions: Conventions = field(default_factory=Conventions)

    @property
    def rows(self) -> list[Row]:
        return [r for run in self.runs for r in run.rows]

    @property
    def passed(self) -> bool:
        return all(run.passed for run in self.runs)

    @property
    def explained_by(self) -> list[Trap]:
        """The traps whose flip alone makes float64 agree."""
        return [t for t in self.traps or () if t.passed]

    def lines(self) -> list[str]:
        """The table (as ``python -m parity`` prints it) and the summary lines."""
        rows = self.rows
        width = max([len(r.parameter) for r in rows] + [9])
        out = [f"{'parameter':<{width}}  {'dtype':<7}  {'check':<9}  {'max abs err':>11}  "
               f"{'max rel err':>11}  {'tolerance':<22}  result"]
        out += [f"{r.parameter:<{width}}  {r.dtype:<7}  {r.check:<9}  {r.max_abs:>11.3e}  "
                f"{r.max_rel:>11.3e}  {r.tolerance:<22}  {'pass' if r.passed else 'FAIL'}"
                for r in rows]
        for run in self.runs:
            where = ("never" if run.diverged_at is None else
                     f"at step {run.diverged_at} of {self.steps}")
            out.append(f"{run.dtype}: loss torch {run.loss_torch:.10g}, jax {run.loss_jax:.10g};"
                       f" the steps moved the weights up to {run.moved:.3g}; the trajectories "
                       f"diverge {where}")
        failed = [r for r in rows if not r.passed]
        out.append(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
        if self.trap_note:
            out.append(self.trap_note)
        for t in self.explained_by:
            out.append(f"trap found: your torch code matches ours with {t.field}={t.value!r}: "
                       f"{t.explanation}")
        if self.traps is not None and not self.explained_by:
            out.append("no single known trap explains the difference (tried: "
                       + ", ".join(f"{t.field}={t.value!r}" for t in self.traps) + ")")
            f64 = next(r for r in self.runs if r.dtype == "float64")
            best = min(self.traps, key=lambda t: t.grad_max_abs, default=None)
            if best is not None and best.grad_max_abs < 0.5 * f64.max_abs("grad"):
                out.append(f"closest: {best.field}={best.value!r} cuts the float64 gradient "
                           f"error from {f64.max_abs('grad'):.3g} to {best.grad_max_abs:.3g}; "
                           "more than one difference may be at work")
        return out

    def to_dict(self) -> dict:
        return {"passed": self.passed, "steps": self.steps, "mapping": self.mapping,
                "conventions": dataclasses.asdict(self.conventions),
                "rows": [dataclasses.asdict(r) for r in self.rows],
                "runs": [{"dtype": r.dtype, "loss_torch": r.loss_torch, "loss_jax": r.loss_jax,
                          "diverged_at": r.diverged_at, "moved": r.moved,
                          "step_max_abs": r.step_max_abs}
                         for r in self.runs],
                "traps": None if self.traps is None else [dataclasses.asdict(t)
                                                          for t in self.traps],
                "explained_by": [f"{t.field}={t.value!r}" for t in self.explained_by]}


# ---------------------------------------------------------------- the comparison
def _optimizers(optimizer: Any, lr: float, weight_decay: float):
    """(torch optimizer factory, optax transformation) that take the same steps."""
    if not isinstance(optimizer, str):
        make_torch, tx = optimizer
        return make_torch, tx
    makers = {"adam": (torch.optim.Adam, optax.adam), "sgd": (torch.optim.SGD, optax.sgd)}
    if optimizer not in makers:
        raise ValueError(f"optimizer={optimizer!r}; allowed: {', '.join(makers)}, or a pair "
                         "(torch optimizer factory, optax transformation)")
    torch_cls, optax_fn = makers[optimizer]
    # torch's weight_decay is L2 added to the gradient before the optimizer (not AdamW)
    decay = [optax.add_decayed_weights(weight_decay)] if weight_decay else []
    return (lambda ps: torch_cls(ps, lr=lr, weight_decay=weight_decay),
            optax.chain(*decay, optax_fn(lr)))


def _clip(grads: Any, max_norm: float | None, eps: float) -> Any:
    if max_norm is None:
        return grads
    norm = optax.global_norm(grads)
    scale = jnp.minimum(max_norm / (norm + eps), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def _batches(batches: Any, seed: int, count: int):
    if callable(batches):
        rng = np.random.default_rng(seed)
        return [batches(rng) for _ in range(count)]
    batches = list(batches)
    if not batches:
        raise ValueError("batches is empty; allowed: a non-empty sequence or a function "
                         "rng -> batch")
    return [batches[i % len(batches)] for i in range(count)]


def _cast(batch: Any, np_dtype: Any, torch_dtype: Any) -> tuple[Any, Any]:
    """The batch for each side: floats in the run's dtype (numpy for JAX, tensors for
    torch), integers and booleans as they are."""
    def jax_leaf(x):
        x = _np(x) if hasattr(x, "detach") else x
        if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
            return x.astype(np_dtype)
        return x

    def torch_leaf(x):
        if isinstance(x, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(x))
            return t.to(torch_dtype) if t.is_floating_point() else t
        return x

    ours = jax.tree.map(jax_leaf, batch)
    return ours, jax.tree.map(torch_leaf, ours)


def _errors(ours: Mapping, theirs: Mapping, rtol: float, atol: float, dtype: str, check: str,
            tolerance: str) -> list[Row]:
    """One row per leaf: passed when every element is within ``atol + rtol * |torch|``."""
    rows = []
    for k in theirs:
        a, b = np.asarray(ours[k], np.float64), np.asarray(theirs[k], np.float64)
        diff = np.abs(a - b)
        max_abs = float(diff.max()) if diff.size else 0.0
        max_rel = float((diff / np.maximum(np.abs(b), atol)).max()) if diff.size else 0.0
        ok = bool(np.all(diff <= atol + rtol * np.abs(b)))  # NaN fails
        rows.append(Row(k, dtype, check, max_abs, max_rel, tolerance, ok))
    return rows


def _strip(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Leaf names without flax's top-level "params/"."""
    return {k.removeprefix("params/"): v for k, v in flat.items()}


def _run(dtype: str, conventions: Conventions, ctx: dict) -> Run:
    tol = TOLERANCES[dtype]
    np_dtype, torch_dtype = ((np.float64, torch.float64) if dtype == "float64"
                             else (np.float32, torch.float32))
    steps, clip, links, template = ctx["steps"], ctx["clip"], ctx["links"], ctx["template"]
    steps = min(steps, ctx.get("max_steps", steps))
    layout = conventions.weight_layout
    x64 = jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()
    with x64:
        model = copy.deepcopy(ctx["torch_model"]).to(torch_dtype)
        named = dict(model.named_parameters())
        params = jax.tree.map(jnp.asarray, to_flax(named, links, template, np_dtype, layout))
        loss_fn = ctx["jax_loss"]
        if ctx["takes_conventions"]:
            loss_fn = lambda p, b: ctx["jax_loss"](p, b, conventions=conventions)  # noqa: E731
        make_torch_opt, tx, update = ctx["optimizer"]

        def grad_fn(p, b):
            loss, g = jax.value_and_grad(loss_fn)(p, b)
            return loss, _clip(g, clip, conventions.clip_eps)

        if ctx["jit"]:
            grad_fn = jax.jit(grad_fn)
        batches = [_cast(b, np_dtype, torch_dtype) for b in ctx["batches"]]

        def torch_grads(tb):
            model.zero_grad()
            loss = ctx["torch_loss"](model, tb)
            loss.backward()
            if clip is not None:
                ctx["torch_clip"](model.parameters(), clip)
            grads = {k: p.grad if p.grad is not None else torch.zeros_like(p)
                     for k, p in model.named_parameters()}
            return float(loss.detach()), grads

        def flat(tree):
            return _strip(_flat(tree))

        # one gradient
        jb, tb = batches[0]
        loss_torch, tgrads = torch_grads(tb)
        loss_jax, grads = grad_fn(params, jb)
        theirs = flat(to_flax(tgrads, links, template, np.float64, layout))
        rows = _errors(flat(grads), theirs, tol["grad_rtol"], tol["grad_atol"], dtype,
                       "grad", f"rtol {tol['grad_rtol']:g} atol {tol['grad_atol']:g}")

        # the optimizer trajectory, compared after every step
        opt = make_torch_opt(model.parameters())
        opt_state = tx.init(params)
        start = flat(jax.tree.map(np.asarray, params))
        step_max_abs, diverged_at = [], None
        for i in range(steps):
            jb, tb = batches[1 + i]
            torch_grads(tb)
            opt.step()
            updates, opt_state = update(grad_fn(params, jb)[1], opt_state, params)
            params = optax.apply_updates(params, updates)
            ours, theirs = flat(params), flat(to_flax(dict(model.named_parameters()), links,
                                                       template, np.float64, layout))
            err = max(float(np.max(np.abs(np.asarray(ours[k], np.float64) - theirs[k]),
                                   initial=0.0)) for k in theirs)
            err = err if np.isfinite(err) else float("inf")
            step_max_abs.append(err)
            if diverged_at is None and not err <= tol["steps_atol"]:
                diverged_at = i + 1
        if steps:
            rows += _errors(ours, theirs, 0.0, tol["steps_atol"], dtype, f"{steps} steps",
                            f"atol {tol['steps_atol']:g}")
        moved = max((float(np.max(np.abs(np.asarray(ours[k]) - start[k]), initial=0.0))
                     for k in start), default=0.0) if steps else 0.0
    return Run(dtype, conventions, rows, loss_torch, float(loss_jax), step_max_abs,
               diverged_at, moved)


def compare(
    torch_model: torch.nn.Module,
    torch_loss: Callable[[torch.nn.Module, Any], torch.Tensor],
    jax_model: Any,
    jax_loss: Callable[..., jax.Array],
    batches: Sequence[Any] | Callable[[np.random.Generator], Any],
    *,
    example_input: Any = None,
    mapping: Mapping[str, Any] | None = None,
    steps: int | None = None,
    optimizer: Any = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    clip: float | None = None,
    torch_clip: Callable[[Any, float], Any] = torch.nn.utils.clip_grad_norm_,
    conventions: Conventions | None = None,
    dtypes: Sequence[str] = ("float64", "float32"),
    seed: int = 0,
    find_traps: bool = True,
    jit: bool = True,
) -> Report:
    """Check that a JAX port computes the gradients and optimizer steps of its torch code.

    Args:
      torch_model: the torch module; its weights are copied (it is not modified).
      torch_loss: ``(model, batch) -> scalar tensor``; the batch's float arrays arrive as
        tensors of the run's dtype, integer arrays as int64 tensors.
      jax_model: a flax ``nn.Module`` (its parameter tree comes from
        ``init(key, example_input)``) or a params pytree (only its structure and shapes
        are used: the values are overwritten with the torch weights).
      jax_loss: ``(params, batch) -> scalar``, or ``(params, batch, conventions)`` to let
        the trap detector switch the loss's conventions (``parity.conventions``).
      batches: a sequence of batches (pytrees of numpy arrays; the first gives the
        gradient check, then one per step, cycled) or ``rng -> batch`` called once for the
        gradient and once per step with a ``np.random.default_rng(seed)``.
      example_input: the flax module's input for ``init`` (only with a module).
      mapping: ``{torch layer prefix or parameter name: flax path "a/b"}`` instead of the
        automatic one (see ``explicit_mapping``).
      steps: optimizer steps (default: 50, or one per batch of a sequence after the first).
      optimizer: "adam" or "sgd" (torch's class against optax's, same lr and L2
        weight_decay), or a pair (``params -> torch optimizer``, optax transformation).
      lr, weight_decay: the optimizer's settings.
      clip: the gradient's max global norm on both sides: ``torch_clip`` on torch's,
        ours with ``conventions.clip_eps`` (torch's +1e-6 by default) on the JAX side.
      torch_clip: ``(parameters, max_norm) -> Any``, torch's clip; by default
        ``torch.nn.utils.clip_grad_norm_``.
      conventions: passed to a ``jax_loss`` that takes them (default: ``TORCH``).
      dtypes: any of "float64", "float32".
      seed: the seed of the ``rng`` given to a batch function.
      find_traps: when float64 disagrees, re-run it with each trap flipped.
      jit: jit the JAX gradient and step (turn off for losses that need Python values).

    Returns:
      a ``Report``; ``report.passed``, ``report.lines()`` (the table), ``report.to_dict()``.
    """
    for d in dtypes:
        if d not in TOLERANCES:
            raise ValueError(f"dtype={d!r}; allowed: {', '.join(TOLERANCES)}")
    if not isinstance(torch_model, torch.nn.Module):
        raise ValueError(f"torch_model is a {type(torch_model).__name__}; allowed: a "
                         "torch.nn.Module")
    if isinstance(jax_model, nn.Module):
        if example_input is None:
            raise ValueError("jax_model is a flax module: pass example_input for its init")
        template = jax_model.init(jax.random.key(0), example_input)
    elif isinstance(jax_model, Mapping):
        template = jax_model
    else:
        raise ValueError(f"jax_model is a {type(jax_model).__name__}; allowed: a flax "
                         "nn.Module or a params pytree of nested dicts")
    takes = "conventions" in inspect.signature(jax_loss).parameters
    if conventions is not None and not takes:
        raise ValueError("conventions given but jax_loss takes no 'conventions' argument")
    base = conventions or TORCH
    if steps is None:
        steps = 50 if callable(batches) else max(len(batches) - 1, 1)
    if steps < 0:
        raise ValueError(f"steps={steps!r}; allowed: an integer >= 0")
    make_torch_opt, tx = _optimizers(optimizer, lr, weight_decay)
    links = (explicit_mapping(torch_model, mapping) if mapping is not None
             else auto_mapping(torch_model, template))
    _check_covered(torch_model, links)
    ctx = {"torch_model": torch_model, "torch_loss": torch_loss, "jax_loss": jax_loss,
           "template": template, "links": links, "steps": steps, "clip": clip,
           "torch_clip": torch_clip,
           "optimizer": (make_torch_opt, tx, jax.jit(tx.update) if jit else tx.update),
           "jit": jit,
           "takes_conventions": takes, "batches": _batches(batches, seed, steps + 1)}
    runs = [_run(d, base, ctx) for d in dtypes]
    report = Report(runs, {lk.torch: lk.flax for lk in links}, steps, conventions=base)
    f64 = next((r for r in runs if r.dtype == "float64"), None)
    if find_traps and f64 is not None and not f64.passed:
        report.traps, report.trap_note = _find_traps(base, ctx)
    elif find_traps and f64 is not None and not report.passed:
        report.trap_note = ("float64 agrees, so the float32 difference is round-off, not a "
                            "convention")
    return report


def _find_traps(base: Conventions, ctx: dict) -> tuple[list[Trap], str]:
    why_not = {}  # the traps that cannot apply, and why
    if not ctx["takes_conventions"]:
        why_not.update(dict.fromkeys(LOSS_FIELDS, "jax_loss takes no 'conventions' argument"))
    if ctx["clip"] is None:
        why_not["clip_eps"] = "no clip"
    if not any(lk.kind == "linear" and _is_square(ctx["torch_model"], lk.torch)
               for lk in ctx["links"]):
        why_not["weight_layout"] = "no square Linear weight"
    fields = [f for f in TRAP_FIELDS if f not in why_not]
    traps = []
    for f in fields:
        conv = flipped(base, f)
        run = _run("float64", conv, {**ctx, "max_steps": TRAP_STEPS})
        value = getattr(conv, f)
        traps.append(Trap(f, value, EXPLAIN[(f, value)], run.passed, run.max_abs("grad"),
                          run.max_abs("steps")))
    note = (f"float64 differs: re-ran it (the gradient and {TRAP_STEPS} steps) with each of "
            f"{len(fields)} traps flipped on our side")
    if why_not:
        reasons = {}
        for f, why in why_not.items():
            reasons.setdefault(why, []).append(f)
        note += "; not tried: " + "; ".join(f"{', '.join(fs)} ({why})"
                                            for why, fs in reasons.items())
    return traps, note


def _is_square(model: torch.nn.Module, prefix: str) -> bool:
    w = dict(model.named_modules())[prefix].weight
    return w.shape[0] == w.shape[1]
