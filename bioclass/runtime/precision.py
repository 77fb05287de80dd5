"""Numeric precision: the one place that picks an autocast dtype, for training and inference."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from dataclasses import dataclass

import torch

from bioclass.core.errors import BioclassError
from bioclass.runtime.cpuinfo import cpu_flags
from bioclass.runtime.probe_cache import cache_dir, cached_speedup

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "amp")  # what scan and embed accept (--precision)


def cuda_amp_dtype() -> torch.dtype:
    """bf16 where the GPU supports it (no loss scaling needed), else fp16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def training_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype of a training step (`train.amp`): AMP on CUDA only; None elsewhere,
    where training stays in float32."""
    if not amp or device.type != "cuda":
        return None
    return cuda_amp_dtype()


# What an ensemble of ONNX exports computes in when some are int8 (`bioclass export --int8`).
INT8_AND_FP32 = "int8+fp32"
# Precisions fixed inside exported models: they run as they are, with no autocast.
EXPORTED_PRECISIONS = ("int8", INT8_AND_FP32)


def inference_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of a resolved `--precision` (see `resolve_precision` for auto): fp32
    (none), bf16 (CPU or CUDA), amp (CUDA)."""
    if precision in ("fp32", *EXPORTED_PRECISIONS):
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "amp":
        if device.type != "cuda":
            raise BioclassError("--precision amp needs a CUDA device; use bf16 on a CPU")
        return cuda_amp_dtype()
    raise BioclassError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")


@dataclass(frozen=True)
class PrecisionChoice:
    """What `--precision` asked for, what runs, and why (for the log and the manifest)."""

    asked: str
    used: str  # fp32 | bf16 | amp: what the scores are computed in
    reason: str

    def describe(self) -> str:
        return f"{self.asked} -> {self.used}: {self.reason}"


def resolve_precision(device: torch.device, asked: str) -> PrecisionChoice:
    """The precision to run for `--precision` on `device`.

    auto: AMP on CUDA; on a CPU, bf16 only where the CPU computes it natively and a short probe
    (`bf16_probe_speedup`) finds it faster than fp32 there, else fp32; fp32 elsewhere (MPS).
    An explicit choice is kept; one the device cannot run fails now, and bf16 on a CPU without
    native bf16 runs with a warning (emulated: slower than fp32, same scores within bf16's
    rounding).
    """
    if asked == "auto":
        return _auto(device)
    inference_dtype(device, asked)  # refuses what the device cannot run
    if asked == "bf16" and device.type == "cpu":
        native, found = cpu_bf16_support()
        if not native:
            log.warning(
                "--precision bf16: this CPU has no native bfloat16 (%s); bf16 is emulated "
                "and usually slower than fp32 here",
                found,
            )
            return PrecisionChoice(asked, asked, f"as asked; emulated: {found}")
        return PrecisionChoice(asked, asked, f"as asked; native bf16 ({found})")
    return PrecisionChoice(asked, asked, "as asked")


def _auto(device: torch.device) -> PrecisionChoice:
    if device.type == "cuda":
        dtype = "bf16" if cuda_amp_dtype() == torch.bfloat16 else "fp16"
        return PrecisionChoice("auto", "amp", f"CUDA autocast ({dtype})")
    if device.type != "cpu":
        return PrecisionChoice("auto", "fp32", f"{device.type}: fp32")
    native, found = cpu_bf16_support()
    if not native:
        return PrecisionChoice("auto", "fp32", f"no native bf16 ({found})")
    # Looked up at call time: tests replace the measurement.
    speedup, measured = cached_speedup(torch.get_num_threads(), found, bf16_probe_speedup)
    verdict = "faster" if speedup >= BF16_MIN_SPEEDUP else "not faster"
    used = "bf16" if speedup >= BF16_MIN_SPEEDUP else "fp32"
    if measured is not None:
        # Not in the reason: a scan's manifest must not depend on whether the probe was cached.
        log.debug("bf16 probe: %.2fx fp32, measured %s, kept in %s", speedup, measured, cache_dir())
    return PrecisionChoice(
        "auto", used, f"native bf16 ({found}), {verdict} in the probe ({speedup:.2f}x fp32)"
    )


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """The autocast context for `dtype`, or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16, AMX, Arm BF16); elsewhere bf16
    is emulated and slower than fp32."""
    return cpu_bf16_support()[0]


# The CPU features that compute bfloat16 natively: x86's AVX512-BF16 and AMX (tile
# multiplies), Arm's BF16 extension ("bf16" among /proc/cpuinfo's Features).
_NATIVE_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "bf16")
_TORCH_CHECKS = {"avx512_bf16": "_is_avx512_bf16_supported", "amx": "_is_amx_tile_supported"}


def cpu_bf16_support() -> tuple[bool, str]:
    """(native, what was found): PyTorch's own CPU checks (AVX512-BF16, AMX) where this PyTorch
    has them, then the flags of /proc/cpuinfo (Linux; the only check for Arm's BF16); no way to
    tell counts as not native."""
    checks = {name: getattr(torch.cpu, fn, None) for name, fn in _TORCH_CHECKS.items()}
    available = {name: fn for name, fn in checks.items() if fn is not None}
    present = [name for name, fn in available.items() if fn()]
    if present:
        return True, " and ".join(present)
    flags = cpu_flags()
    listed = [f for f in _NATIVE_FLAGS if f in (flags or ())]
    if listed:
        return True, " and ".join(listed) + " in /proc/cpuinfo"
    looked = [*available] + ([] if flags is None else ["/proc/cpuinfo bf16 flags"])
    if not looked:
        return False, "CPU features unknown: no PyTorch check and no /proc/cpuinfo"
    return False, f"{', '.join(looked)} absent"


# int8 dot products in one instruction: x86's VNNI (AVX512 or AVX) and AMX, Arm's dot product.
_INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")


def cpu_int8_dot() -> str | None:
    """The CPU flag that gives native int8 dot products (/proc/cpuinfo), or None (absent or
    unknown). Without one, x86 multiplies uint8 by int8 in 16-bit sums that can saturate."""
    flags = cpu_flags() or set()
    return next((f for f in _INT8_DOT_FLAGS if f in flags), None)


# bf16 must beat fp32 by this much in the probe: on a CPU where the two are close, fp32 (the
# exact scores) wins, and probe noise cannot flip the choice between runs.
BF16_MIN_SPEEDUP = 1.15


@functools.cache
def bf16_probe_speedup(threads: int) -> float:
    """How many times faster bf16 autocast runs than fp32 on this CPU, from a channels-last
    3x3 convolution the size of a scanning CNN's middle layers (convolutions are nearly all of
    CNN10's and MobileNet's work), best of two each, interleaved: 6 calls, about 0.05-0.2 s
    (more on a busy machine), once per process and thread count.

    Native bf16 instructions do not make bf16 faster everywhere: the conversions around each
    layer can cost more than the faster multiplies save (measured on one Xeon with
    AVX512-BF16 and no AMX: bf16 ran these layers at 0.5-0.7x fp32).
    """
    del threads  # the cache key: the speed ratio depends on it
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 64, 32, 32, generator=generator)
    x = x.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(memory_format=torch.channels_last)

    def run(dtype: torch.dtype | None) -> float:
        with torch.no_grad(), autocast(torch.device("cpu"), dtype):
            started = time.perf_counter()
            conv(x)
            return time.perf_counter() - started

    best = {None: float("inf"), torch.bfloat16: float("inf")}
    for dtype in best:
        run(dtype)  # the first call builds the kernels
    for _ in range(2):
        for dtype in best:
            best[dtype] = min(best[dtype], run(dtype))
    return best[None] / best[torch.bfloat16]
