"""Throughput benchmarks: JAX vs the PyTorch references, measured side by side."""
