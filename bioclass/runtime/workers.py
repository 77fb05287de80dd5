"""How many data-loader worker processes a machine can usefully run."""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_said: set[tuple[int, int]] = set()


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and job schedulers
    set), else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def loader_workers(requested: int) -> int:
    """`train.num_workers` capped at the available cores, saying so once per process.

    More worker processes than cores only compete for them (PyTorch warns about it); the batches
    do not depend on the number of workers, so capping changes nothing but the speed.
    """
    cores = available_cores()
    if requested <= cores:
        return requested
    if (requested, cores) not in _said:
        _said.add((requested, cores))
        log.info(
            "train.num_workers %d is more than the %d core(s) available: using %d data-loader "
            "workers",
            requested,
            cores,
            cores,
        )
    return cores
