"""The bf16 probe's answer kept on disk, once per machine instead of once per process.

`--precision auto` times bf16 against fp32 on CPUs with native bf16 (`precision`). The answer is
a property of the CPU, the PyTorch build and the thread count, not of the moment, but the probe
costs every process 0.014 s on a quiet 2-core machine and 0.15 s on a busy one, where schedulers
start scans one file at a time. It is kept in `probe.json` in the cache folder
(`$BIOCLASS_CACHE_DIR`, else `$XDG_CACHE_HOME/bioclass`, else `~/.cache/bioclass`) under a key
naming all of those, when the machine was not busy while it ran (a noisy ratio is used once,
not kept), for at most a month; a folder that cannot be written only means the probe runs
again.
"""

from __future__ import annotations

import json
import logging
import os
import platform
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch

from bioclass.core.atomic import atomic_write_text
from bioclass.core.errors import BioclassError
from bioclass.runtime.cpuinfo import cpu_model

log = logging.getLogger(__name__)

# Part of every key: a change to the probe itself makes the stored answers stale.
PROBE_VERSION = 1
FILE_NAME = "probe.json"
# A probe timed while other work filled the cores is used once, not kept: one noisy ratio
# would otherwise decide every later run. Kept answers are measured again after a month.
MAX_LOAD_PER_CORE = 0.75
MAX_AGE_DAYS = 30


def cache_dir() -> Path:
    """Where bioclass keeps what it measured about this machine."""
    chosen = os.environ.get("BIOCLASS_CACHE_DIR")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "bioclass"


def machine_key(threads: int, flags: str) -> str:
    """What the probe's answer depends on: the CPU (model and its bf16 flags), the PyTorch
    build, the thread count, and the probe's version."""
    return (
        f"bf16 probe v{PROBE_VERSION}; {cpu_model()} ({platform.machine()}; {flags}); "
        f"torch {torch.__version__}; {threads} threads"
    )


def cached_speedup(
    threads: int, flags: str, measure: Callable[[int], float]
) -> tuple[float, str | None]:
    """The stored probe answer for this machine, or `measure(threads)` stored for next time.

    Returns:
        The speed ratio, and the date it was measured when it came from the cache (else None).
    """
    path = cache_dir() / FILE_NAME
    key = machine_key(threads, flags)
    stored = _read(path)
    entry = stored.get(key)
    if _fresh(entry):
        return float(entry["speedup"]), str(entry["measured"])
    load = _load_per_core()
    speedup = measure(threads)
    if load is None or load >= MAX_LOAD_PER_CORE:
        # Timed while other work filled the cores: good for this process, not to keep.
        return speedup, None
    today = date.today().isoformat()
    stored[key] = {"speedup": round(speedup, 4), "measured": today, "load_per_core": load}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(stored, indent=1, sort_keys=True) + "\n")
    except (OSError, BioclassError) as exc:  # unwritable or full: measured again next time
        log.debug("bf16 probe not cached in %s: %s", path, exc)
    return speedup, None


def _fresh(entry: object) -> bool:
    """A stored answer that is whole and younger than MAX_AGE_DAYS."""
    if not isinstance(entry, dict) or not isinstance(entry.get("speedup"), (int, float)):
        return False
    try:
        measured = date.fromisoformat(str(entry.get("measured")))
    except ValueError:
        return False
    return 0 <= (date.today() - measured).days < MAX_AGE_DAYS


def _load_per_core() -> float | None:
    """The 1-minute load average per core, or None where the system does not say."""
    try:
        return round(os.getloadavg()[0] / (os.cpu_count() or 1), 3)
    except (AttributeError, OSError):
        return None


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, unreadable or damaged: measured and written anew
        return {}
    return data if isinstance(data, dict) else {}
