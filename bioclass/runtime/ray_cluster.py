"""Joining (or starting) a Ray runtime for `bioclass scan --ray`, with one-line refusals.

Ray is an optional dependency (`pip install "bioclass[ray]"`): only this module and the scan's
Ray modules import it, and only when `--ray` is given, so the plain install never loads it.
"""

from __future__ import annotations

import logging
import math
import socket
from dataclasses import dataclass
from types import ModuleType

from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)

INSTALL_HINT = 'pip install "bioclass[ray]"'
# How long joining a cluster may take before the scan gives up with a clear line.
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class RaySettings:
    """Where and how the scan's Ray workers run (`--ray*` options)."""

    address: str  # local (start one here) | auto (the cluster this node belongs to) | address
    workers: int | None = None  # None: as many as the cluster's CPUs (or GPUs) allow
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    # Long files are cut into segments of about this much audio; None: only as far as it takes
    # to keep every worker busy (see scan.segments.auto_segment_seconds).
    segment_minutes: float | None = None

    def __post_init__(self) -> None:
        if not self.address.strip():
            raise BioclassError("--ray needs local, auto or a cluster address (host:port)")
        if self.workers is not None and self.workers < 1:
            raise BioclassError(f"--ray-workers must be at least 1, got {self.workers}")
        if not math.isfinite(self.cpus_per_worker) or self.cpus_per_worker <= 0:
            raise BioclassError(
                f"--ray-cpus-per-worker must be a positive number, got {self.cpus_per_worker:g}"
            )
        if not math.isfinite(self.gpus_per_worker) or self.gpus_per_worker < 0:
            raise BioclassError(
                f"--ray-gpus-per-worker must be 0 or more, got {self.gpus_per_worker:g}"
            )
        minutes = self.segment_minutes
        if minutes is not None and (not math.isfinite(minutes) or minutes <= 0):
            raise BioclassError(
                f"--ray-segment-minutes must be a positive number, got {self.segment_minutes:g}"
            )


def import_ray() -> ModuleType:
    """The `ray` module, or a one-line refusal saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BioclassError(f"--ray needs Ray, which is not installed: {INSTALL_HINT}") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of an explicit address (`host:port` or `ray://host:port`), else None."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_reachable(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """Fail within `timeout_s` when nothing answers at `address` (host:port): Ray itself may
    retry for minutes before it gives up on a wrong address."""
    target = _host_port(address)
    if target is None:
        raise BioclassError(
            f"--ray {address!r}: give local, auto, or a cluster address as host:port "
            "(e.g. 10.0.0.5:6379, what `ray start --head` prints)"
        )
    try:
        with socket.create_connection(target, timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise BioclassError(
            f"cannot reach the Ray cluster at {address} ({reason}): is `ray start --head` "
            "running there, and is the port open from this machine?"
        ) from None


def connect(settings: RaySettings) -> tuple[ModuleType, bool]:
    """Join or start the Ray runtime `settings.address` names; (ray, whether it was started
    here, so the caller shuts it down again). An already initialised runtime is used as it is."""
    ray = import_ray()
    address = settings.address
    if address not in ("local", "auto"):
        check_reachable(address)
    if ray.is_initialized():  # e.g. the Python API called from a program that runs Ray
        return ray, False
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    try:
        if address == "local":
            ray.init(**quiet)
        else:
            ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = "this machine's Ray cluster (auto)" if address == "auto" else address
        raise BioclassError(f"cannot join {where}: {first}") from None
    return ray, True
