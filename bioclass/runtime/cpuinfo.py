"""What /proc/cpuinfo says about this CPU: its model name and flags (Linux; None elsewhere).

One reader for the precision choice (bf16 and int8 instructions), the kept probe's machine key
and the benchmarks' machine descriptions, so they cannot disagree about the CPU.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")

# The line naming the processor: x86's "model name"; on Arm, where that line is often absent,
# the board ("Hardware") or the core's part number ("CPU part").
_MODEL_KEYS = ("model name", "Hardware", "CPU part")
# The instruction-set flags: x86's "flags", Arm's "Features".
_FLAG_KEYS = ("flags", "Features")


@dataclass(frozen=True)
class CpuInfo:
    model: str | None  # None: no model line
    flags: frozenset[str] | None  # None: no flags line


def read_cpuinfo(path: Path = CPUINFO) -> CpuInfo | None:
    """The model and flags of the first processor listed in a cpuinfo file, or None when the
    file cannot be read (not Linux, or /proc hidden)."""
    model: str | None = None
    flags: frozenset[str] | None = None
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in _MODEL_KEYS and model is None:
                    model = value.strip()
                elif key in _FLAG_KEYS and flags is None:
                    flags = frozenset(value.split())
                elif not key and (model is not None or flags is not None):
                    break  # a blank line ends the first processor's block
    except OSError:
        return None
    return CpuInfo(model, flags)


def cpu_flags(path: Path = CPUINFO) -> set[str] | None:
    """The first processor's flags, or None (no readable cpuinfo, or no flags line)."""
    info = read_cpuinfo(path)
    return None if info is None or info.flags is None else set(info.flags)


def cpu_model(path: Path = CPUINFO) -> str:
    """The processor's name: cpuinfo's model line, else what Python's platform module knows."""
    info = read_cpuinfo(path)
    if info is not None and info.model:
        return info.model
    return platform.processor() or platform.machine() or "unknown CPU"
