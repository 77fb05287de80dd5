"""Shared by the start-up and BirdNET benchmarks: untrained checkpoints, timing whole
processes, and a description of the machine they ran on (CPU, its bf16 flags, load)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from bioclass.runtime.cpuinfo import cpu_model, read_cpuinfo

CLASSES = ["background", "a", "b", "c", "d"]
REPO = Path(__file__).resolve().parents[1]


def process_env(**extra: str) -> dict[str, str]:
    """The environment of timed child processes: this checkout's bioclass first on the path,
    and compiled bytecode cached as an installed package has it (a sandbox that sets
    PYTHONDONTWRITEBYTECODE makes every process compile bioclass's modules again, ~0.05 s)."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, **extra}


# The CPU flags that decide what bf16 (and int8) can do natively.
NOTABLE_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "bf16")


def make_checkpoint(path: Path, model_name: str = "cnn10", seconds: float = 3.0) -> Path:
    """An untrained checkpoint (16 kHz, `seconds` windows, 5 classes, seeded weights): speed
    does not depend on the weights."""
    import torch

    from bioclass.checkpoint import atomic_save, model_checkpoint
    from bioclass.models import FrontendConfig, create_model
    from bioclass.recipe import recipe_from_dict, recipe_to_dict

    recipe = recipe_to_dict(recipe_from_dict({"audio": {"f_max": 8000.0, "clip_seconds": seconds}}))
    torch.manual_seed(0)
    frontend = FrontendConfig(sample_rate=16000, f_max=8000.0)
    model = create_model(model_name, len(CLASSES), frontend)
    ckpt = model_checkpoint(model, model_name, CLASSES, frontend, recipe, None, False, "softmax")
    atomic_save(ckpt, path)
    return path


def timed(
    command: list[str], env: dict[str, str] | None = None, fresh: Path | None = None
) -> float:
    """Wall seconds of a whole process (start-up included); its failure stops the benchmark.

    `fresh`: a folder removed first, e.g. a scan's output folder: a scan finding its stored
    parts there would resume, not scan.
    """
    if fresh is not None:
        shutil.rmtree(fresh, ignore_errors=True)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stderr[-2000:]}")
    return wall


def cpu_description() -> dict[str, str]:
    """CPU model, the notable flags it has, core count and load average."""
    info = read_cpuinfo()
    flags = (info.flags if info else None) or frozenset()
    present = [f for f in NOTABLE_FLAGS if f in flags]
    return {
        "cpu": cpu_model(),
        "cores": str(os.cpu_count()),
        "flags": " ".join(present) or "none of " + " ".join(NOTABLE_FLAGS),
        "load": load_average(),
    }


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"
