"""Whole-run parity: 100 updates of our Trainer and of a plain torch loop on the same
episodes end with the same parameters in float64 (parity/whole_run.py)."""

import pytest

pytest.importorskip("torch")

from parity.whole_run import ATOL, whole_run  # noqa: E402


@pytest.mark.parametrize("policy", ["categorical", "gaussian"])
def test_100_updates_end_with_the_same_parameters(policy):
    run = whole_run(policy, updates=100)
    assert run.max_abs <= ATOL and run.first_divergence is None, run.line()
    # the run went somewhere: equal parameters that never moved would prove nothing
    assert run.moved > 0.1, run.line()
