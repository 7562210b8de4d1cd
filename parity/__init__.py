"""Parity suite: PyTorch versions of each reference system's loss, and checks that our JAX
API computes the same gradients and optimizer trajectories on identical inputs."""
