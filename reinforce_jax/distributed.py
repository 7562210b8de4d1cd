"""One sweep over several processes (one per host) on JAX's distributed runtime.

Every process runs the same ``reinforce-jax sweep`` command with the same shared
``--out``, plus its distributed settings. ``jax.distributed.initialize`` connects the
processes and tells each its index; the settings come from flags or from whatever that
function reads itself (``JAX_COORDINATOR_ADDRESS``, SLURM, Open MPI, Kubernetes).

The work is split without any messages: all processes expand the same grid and use the
plan (the chunks) that process 0 wrote to ``sweep.json``, and chunk k, counted over all
shape groups in order, belongs to process k mod N. So no two processes ever write the same
chunk file, and a re-started process finds exactly its own unfinished chunks again.
Round-robin rather than contiguous blocks spreads every shape group over all processes,
so the processes finish together even when groups differ in cost.

Runs never communicate: each process trains on its own ``jax.local_devices()`` and no
collective is compiled. The processes meet only through files in ``--out``: process 0
writes ``sweep.json`` and the others wait for it; process 0, once its own chunks are
done, waits until every chunk file exists and then writes the results and the report.
The waiting polls files rather than using a barrier: a barrier hangs when a peer has been
killed, while polling can say what it waits for, give up after a bounded quiet time, and
take the chunks of a peer that was started again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
from jax.extend.backend import clear_backends

EXIT_PEERS_MISSING = 4  # process 0 gave up waiting for other processes' chunks (README)
POLL_SECONDS = 0.5


class Processes(NamedTuple):
    """This process's index among ``count`` processes sharing one sweep."""

    index: int = 0
    count: int = 1

    def owns(self, chunk: int) -> bool:
        """Whether chunk number ``chunk`` (over all shape groups) is this process's."""
        return chunk % self.count == self.index


def check_settings(coordinator_address: str | None, num_processes: int | None,
                   process_id: int | None) -> None:
    """Refuse bad distributed flags with one line, before connecting or compiling."""
    if num_processes is not None and num_processes < 1:
        raise ValueError(f"num_processes={num_processes!r}; allowed: an integer >= 1")
    if process_id is not None and (process_id < 0 or (
            num_processes is not None and process_id >= num_processes)):
        upper = f"{num_processes - 1}" if num_processes is not None else "num_processes - 1"
        raise ValueError(f"process_id={process_id!r}; allowed: 0..{upper}")
    if coordinator_address is not None:
        host, _, port = coordinator_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"coordinator_address={coordinator_address!r}; allowed: HOST:PORT "
                             "of process 0, e.g. 10.0.0.1:7777")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> Processes:
    """Join JAX's distributed runtime; settings left None come from the environment.

    JAX refuses to join once a backend exists, and importing gymnax (for the environments)
    already made a one-process CPU backend, so that backend is cleared first; the next
    JAX call makes one that knows the other processes. Recoverability is switched on:
    without it, the runtime aborts every process as soon as one dies, and a process that
    is started again cannot rejoin.
    """
    check_settings(coordinator_address, num_processes, process_id)
    jax.config.update("jax_enable_recoverability", True)
    clear_backends()
    try:
        jax.distributed.initialize(coordinator_address, num_processes, process_id)
    except ValueError as err:  # JAX found neither flags nor a launcher's variables
        raise ValueError(f"distributed settings incomplete ({err}); allowed: "
                         "--coordinator-address HOST:PORT --num-processes N --process-id I, "
                         "JAX_COORDINATOR_ADDRESS, or a launcher JAX detects (SLURM, "
                         "Open MPI, Kubernetes)") from None
    return Processes(jax.process_index(), jax.process_count())


def activity(out: Path) -> frozenset:
    """Names and modification times of the chunk and checkpoint files: changes whenever
    some process finishes a chunk or checkpoints one in progress."""
    seen = set()
    for sub in ("chunks", "ckpt"):
        for f in (Path(out) / sub).glob("*.npz"):
            try:
                seen.add((f.name, f.stat().st_mtime_ns))
            except FileNotFoundError:  # a checkpoint removed as we looked
                pass
    return frozenset(seen)


def wait_until(done: Callable[[], bool], out: Path, timeout: float) -> bool:
    """Poll ``done()`` until it holds (True) or ``out`` has shown no activity for
    ``timeout`` seconds (False)."""
    last, quiet_since = activity(out), time.monotonic()
    while not done():
        now, current = time.monotonic(), activity(out)
        if current != last:
            last, quiet_since = current, now
        elif now - quiet_since >= timeout:
            return False
        time.sleep(POLL_SECONDS)
    return True
