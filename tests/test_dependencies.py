"""Every module our code imports comes from a dependency we declare.

Two checks, because either alone misses things:
- a static one reads every ``import`` in our sources (function-level imports included) and
  asks that each outside module belong to a distribution in the declared closure of the
  matching extra (the library: none; ``parity/``: parity; ``benchmarks/``: bench;
  ``tests/``: test);
- a runtime one imports every module of the package in a fresh interpreter and checks
  each module that appeared, which catches a dependency importing something it does not
  declare itself (gymnax 1.0.1 imports ``six``).

The closure follows ``Requires-Dist`` of installed distributions, so a package that is
merely present in this environment (the machine's base Python has ``six``) does not count.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "reinforce_jax"
OWN = {"reinforce_jax", "parity", "benchmarks", "tests", "conftest"}
# source folder -> the extra whose closure must provide its imports (test files: "test")
FOLDERS = {"reinforce_jax": None, "parity": "parity", "benchmarks": "bench", "tests": "test"}


# modules the library imports only when a feature asks for them, and the extra that
# must provide each (its absence gives a one-line error naming the extra)
OPTIONAL = {"wandb": "wandb", "xminigrid": "xminigrid"}


def extra_for(path: Path) -> str | None:
    if path.name.startswith("test_") or path.name == "conftest.py":
        return "test"
    return FOLDERS[path.relative_to(ROOT).parts[0]]


@lru_cache(maxsize=None)
def declared(extra: str | None) -> frozenset[str]:
    """Canonical names of every distribution ``pip install reinforce_jax[extra]`` requires,
    transitively, on this interpreter."""
    seen: set[tuple[str, frozenset]] = set()
    todo = [(PROJECT, frozenset({extra} if extra else ()))]
    while todo:
        name, extras = todo.pop()
        key = (canonicalize_name(name), extras)
        if key in seen:
            continue
        seen.add(key)
        try:
            lines = md.requires(name) or []
        except md.PackageNotFoundError:  # required but absent: an import of it fails anyway
            continue
        for line in lines:
            req = Requirement(line)
            envs = [{"extra": e} for e in extras] or [{"extra": ""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in envs):
                todo.append((req.name, frozenset(req.extras)))
    return frozenset(name for name, _ in seen)


def outside(module: str) -> bool:
    top = module.split(".")[0]
    sibling = any((ROOT / folder / f"{top}.py").exists() for folder in ("tests", "parity"))
    return not (top in sys.stdlib_module_names or top in OWN or sibling
                or top.startswith("_cython_") or top == "__future__")


def undeclared(modules: set[str], extra: str | None) -> list[str]:
    """The modules (top-level names) that no distribution in the closure provides."""
    providers = md.packages_distributions()
    allowed = declared(extra)
    return sorted(m for m in modules if outside(m) and not any(
        canonicalize_name(d) in allowed for d in providers.get(m, [])))


def static_imports(folder: str, extra: str | None) -> dict[str, str]:
    """Top-level module name -> first file importing it, over the .py files of ``folder``
    whose imports ``extra`` must provide."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        if extra_for(path) != extra:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_the_closure_follows_declarations_only():
    base, test = declared(None), declared("test")
    assert {"jax", "flax", "optax", "gymnax", "numpy", "six"} <= base
    assert "torch" not in base and "torch" in declared("parity")
    assert {"pytest", "torch", "gymnasium"} <= test
    # a module no distribution provides is reported, whatever the environment holds
    assert undeclared({"numpy", "surely_not_a_module_xyz"}, None) == ["surely_not_a_module_xyz"]


# each folder's code against its extra, and the test files (in tests/ and parity/)
STATIC_CASES = [("reinforce_jax", None), ("parity", "parity"), ("benchmarks", "bench"),
                ("parity", "test"), ("tests", "test")]


@pytest.mark.parametrize("folder, extra", STATIC_CASES)
def test_every_static_import_is_declared(folder, extra):
    found = static_imports(folder, extra)
    assert found, f"no imports found in {folder}/ for extra {extra!r}"
    optional = {m for m in found if m in OPTIONAL and folder == "reinforce_jax"}
    missing = undeclared(set(found) - optional, extra) + [
        m for m in sorted(optional) if undeclared({m}, OPTIONAL[m])]
    assert not missing, "imported but not declared in pyproject.toml: " + ", ".join(
        f"{m} ({found[m]})" for m in missing)


def importorskip_modules(folder: str) -> dict[str, str]:
    """Top-level name -> first test file loading it with ``pytest.importorskip("name")``:
    optional libraries the static check does not see, since no import statement names them."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "importorskip" and node.args
                    and isinstance(node.args[0], ast.Constant)):
                found.setdefault(node.args[0].value.split(".")[0], str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("folder", ["tests", "parity"])
def test_every_optional_import_in_tests_belongs_to_an_extra(folder):
    """A test may skip when a library is missing, but the library must still be one that some
    extra of ours installs (parity/test_libraries.py: the torchrl and rlax extras). Modules
    not installed here are skipped by their tests and cannot be mapped to a distribution."""
    found = importorskip_modules(folder)
    extras = md.metadata(PROJECT).get_all("Provides-Extra") or []
    installed = set(md.packages_distributions())
    missing = [m for m in sorted(found) if m in installed
               and all(undeclared({m}, extra) for extra in extras)]
    assert not missing, "importorskip of a library no extra declares: " + ", ".join(
        f"{m} ({found[m]})" for m in missing)


# Imports every non-test module of the packages with the undeclared distributions hidden:
# a finder refuses the top-level names that only they provide, as if they were not
# installed. An optional import (jax tries filelock) then takes its fallback; a needed one
# (gymnax's six) fails the import.
RUNTIME = """
import importlib, pkgutil, sys
from importlib.abc import MetaPathFinder
BLOCKED = set({blocked!r})

class Hide(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if path is None and name in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}} (installed here, but not "
                                      "a declared dependency)", name=name)
        return None

sys.meta_path.insert(0, Hide())
for name in {packages!r}:
    pkg = importlib.import_module(name)
    for info in pkgutil.walk_packages(pkg.__path__, name + "."):
        if not info.name.split(".")[-1].startswith(("test_", "__main__")):
            importlib.import_module(info.name)
"""


def hidden(extra: str | None) -> set[str]:
    """Top-level names that only distributions outside the closure provide."""
    allowed = declared(extra)
    return {m for m, dists in md.packages_distributions().items()
            if outside(m) and not any(canonicalize_name(d) in allowed for d in dists)}


def import_all(packages: list[str], blocked: set[str]) -> subprocess.CompletedProcess:
    code = RUNTIME.format(packages=packages, blocked=sorted(blocked))
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("packages,extra", [(["reinforce_jax"], None), (["parity"], "parity")])
def test_every_runtime_import_is_declared(packages, extra):
    out = import_all(packages, hidden(extra))
    assert out.returncode == 0, "an import needs an undeclared package:\n" + out.stderr[-1500:]


def test_the_runtime_check_fails_without_a_needed_package():
    out = import_all(["reinforce_jax"], hidden(None) | {"six"})
    assert out.returncode != 0 and "No module named 'six'" in out.stderr


def test_benchmarks_is_not_installed_as_a_package(tmp_path):
    """Another project owns "benchmarks" on PyPI: ours runs from the repository root only.
    The check is on where a "benchmarks" is found, not on whether one is: torchrl 0.14 (the
    torchrl extra) puts a top-level benchmarks/ folder of its own into site-packages."""
    probe = ("import importlib.util as u, json; specs = [u.find_spec(m) for m in "
             "('benchmarks', 'parity')]; print(json.dumps([s and list("
             "s.submodule_search_locations or [s.origin]) for s in specs]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    found_benchmarks, found_parity = json.loads(out.stdout)
    assert found_parity, out.stdout + out.stderr
    ours = [p for p in found_benchmarks or [] if Path(p).resolve() == ROOT / "benchmarks"]
    assert not ours, found_benchmarks
    shipped = [str(f) for f in md.files(PROJECT) or [] if f.parts[0] == "benchmarks"]
    assert not shipped, shipped
