"""Parity suite: PyTorch versions of each reference system's loss, and checks that our JAX
API computes the same gradients and optimizer trajectories on identical inputs.

``compare`` (``parity.comparison``) checks your own torch code against your JAX port;
``Conventions`` (``parity.conventions``) are the switches of its trap detector. They load
on first use, so importing ``parity`` does not import torch."""

__all__ = ["compare", "Report", "Conventions", "TORCH"]

_WHERE = {"compare": "parity.comparison", "Report": "parity.comparison",
          "Conventions": "parity.conventions", "TORCH": "parity.conventions"}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'parity' has no attribute {name!r}")
