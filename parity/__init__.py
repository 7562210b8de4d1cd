"""Parity suite: PyTorch references of each seed's loss, and checks that our JAX API
computes the same gradients and optimizer trajectories on identical inputs."""
