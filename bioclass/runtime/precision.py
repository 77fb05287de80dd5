"""Numeric precision: the one place that picks an autocast dtype, for training and inference."""

from __future__ import annotations

import contextlib
import logging

import torch

from bioclass.core.errors import BioclassError

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "amp")  # what scan and embed accept (--precision)


def cuda_amp_dtype() -> torch.dtype:
    """bf16 where the GPU supports it (no loss scaling needed), else fp16."""
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def training_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The autocast dtype of a training step (`train.amp`): AMP on CUDA only; None elsewhere,
    where training stays in float32."""
    if not amp or device.type != "cuda":
        return None
    return cuda_amp_dtype()


def inference_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype of `--precision`: fp32 (none), bf16 (CPU or CUDA), amp (CUDA)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "amp":
        if device.type != "cuda":
            raise BioclassError("--precision amp needs a CUDA device; use bf16 on a CPU")
        return cuda_amp_dtype()
    raise BioclassError(f"unknown precision '{precision}' (use {', '.join(PRECISIONS)})")


def check_inference_precision(device: torch.device, precision: str) -> None:
    """Fail now on a precision the device cannot run; warn where bf16 is only emulated (slower
    than fp32 there)."""
    inference_dtype(device, precision)
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        log.warning(
            "this CPU has no native bfloat16 (AVX512-BF16/AMX): bf16 is emulated and "
            "slower than fp32 here"
        )


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """The autocast context for `dtype`, or a no-op."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX); elsewhere bf16 is
    emulated and slower than fp32."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)
