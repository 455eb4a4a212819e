"""Joining a multi-process (multi-host) run, with a bound on how long a dead peer can stall it.

Host side, called once per process before anything touches a JAX device:

    hjax.distributed.initialize()              # SLURM / Open MPI / Cloud TPU: all detected
    hjax.distributed.initialize(coordinator_address="10.0.0.1:1234", num_processes=2, process_id=i)

`timeout` (seconds) bounds three waits of JAX's distributed runtime: how long a process waits
for all processes to join (`initialization_timeout`), how long a process may miss heartbeats
before the coordination service declares it dead and stops every other process with an error
(`heartbeat_timeout_seconds`), and how long a finishing process waits for the others at shutdown
(`shutdown_timeout_seconds`). It defaults to the `HJAX_DISTRIBUTED_TIMEOUT` environment variable,
else `DEFAULT_TIMEOUT`. A process killed outright usually fails its peers sooner: their
collectives see the closed connection (tests/test_multiprocess.py kills one and times the other).
"""

from __future__ import annotations

import itertools
import math
import os

import jax
from jax._src import distributed as jax_distributed  # the runtime client, for barriers (as orbax does)

ENV_VAR = "HJAX_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT = 100  # seconds; JAX's own heartbeat default
BARRIER_TIMEOUT = 1800  # seconds a live process may wait for the others at a barrier (compiling)
_BARRIERS = itertools.count()  # every process calls `barrier` in the same order: ids agree


def resolve_timeout(timeout: float | int | str | None = None, name: str = "timeout") -> int:
    """The bound in whole seconds (>= 1): `timeout`, else $HJAX_DISTRIBUTED_TIMEOUT, else 100.

    Raises ValueError naming the value (as `name`, or the variable) when it is not a positive number."""
    source = name
    if timeout is None:
        timeout = os.environ.get(ENV_VAR)
        source = ENV_VAR
        if timeout is None or not str(timeout).strip():
            return DEFAULT_TIMEOUT
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(timeout, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"invalid {source}={timeout!r}; allowed: a number of seconds > 0")
    return max(1, math.ceil(value))


def initialize(timeout: float | int | str | None = None, coordinator_address: str | None = None,
               num_processes: int | None = None, process_id: int | None = None) -> int:
    """`jax.distributed.initialize` with every wait bounded by `timeout` (see the module docstring).

    Arguments left None are detected by JAX (SLURM, Open MPI, Cloud TPU, or the
    JAX_COORDINATOR_ADDRESS variable). On CPU, cross-process collectives use gloo (JAX's default).
    Returns the bound used, in seconds."""
    bound = resolve_timeout(timeout)
    jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                               process_id=process_id, initialization_timeout=bound,
                               heartbeat_timeout_seconds=bound, shutdown_timeout_seconds=bound)
    return bound


def barrier(name: str, timeout: int = BARRIER_TIMEOUT) -> None:
    """Wait until every process gets here (nothing to do in a single process).

    Through the coordination service, not through a collective: gloo gives processes a fixed
    30 s to meet at their first collective, less than one process may need to compile when
    another found the program in its persistent cache (JAX writes that cache from process 0
    only). Waiting long is safe: a process that dies meanwhile stops missing heartbeats after the
    `initialize` bound, and the coordination service then ends every process."""
    if jax.process_count() == 1:
        return
    barrier_id = f"hjax/{next(_BARRIERS)}/{name}"
    jax_distributed.global_state.client.wait_at_barrier(barrier_id, int(timeout * 1000))
