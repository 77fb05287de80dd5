"""What the user chose for a scan, and which of those choices change the stored scores."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bioclass import __version__
from bioclass.core.errors import BioclassError

if TYPE_CHECKING:
    import torch

    from bioclass.inference.stream import WindowPlan

# Detection formats a scan writes (--format); the score matrix has its own option (--scores).
FORMATS = ("csv", "raven", "audacity", "kaleidoscope")
DEFAULT_FORMATS = ("csv",)
# Where the models run (--backend): checkpoints in PyTorch, exported ONNX files in onnxruntime.
BACKENDS = ("torch", "onnxruntime")
EVENT_EDGES = ("window", "centre")


@dataclass(frozen=True)
class ScanOptions:
    """Everything the user chose (the window length comes from the model).

    The field names are the `bioclass scan` parameter names, and the manifest records the
    fields as they are (with the hop and device the scan resolved).
    """

    out: Path
    hop_seconds: float | None = None  # None: from `overlap`, else half the window
    overlap: float | None = None  # fraction of a window; instead of hop_seconds
    channels: str | int = "mix"
    mode: str = "fast"  # fast (shared trunk per block) | exact (every window on its own)
    backend: str = "torch"  # torch (checkpoints) | onnxruntime (exported ONNX files; exact)
    precision: str = "auto"  # auto | fp32 | bf16 | amp (the scan runs with auto resolved)
    device: str = "auto"
    batch_size: int = 64
    workers: int = 1
    keep_background: bool = False
    merge: bool = True
    min_gap_s: float = 0.0
    min_duration_s: float = 0.0
    # Event rules (see scan.events): edges at window edges or centres; split at score valleys
    # this deep in log-odds (0: never). The defaults are the rules of scans before these existed.
    event_edges: str = "window"
    split_valleys: float = 0.0
    threshold: float | None = None  # None: fitted per-class thresholds (else 0.5)
    thresholds_csv: Path | None = None
    formats: tuple[str, ...] = DEFAULT_FORMATS
    # Also one Raven table for all files (Raven's multi-file layout) and its list file; implies
    # the raven format (the per-recording tables).
    raven_combined: bool = False
    scores_path: Path | None = None
    max_failures: int | None = None
    metadata: bool = False
    collect_events: bool = False  # keep the detections in memory (ScanSummary.events)
    calibration: str | None = None  # on | off; None: on when the checkpoint has a calibration
    # Applied when the outputs are assembled (not in score_params: stored parts are re-used).
    # (Not `classes`: the manifest has the model's classes under that key.)
    classes_filter: tuple[str, ...] | None = None  # write only these labels; None: all
    exclude_classes: tuple[str, ...] = ()  # never write these labels
    top_n: int | None = None  # labels per window: its N best classes over threshold; None: 1

    def __post_init__(self) -> None:
        if self.hop_seconds is not None and self.overlap is not None:
            raise BioclassError("give --hop or --overlap, not both")
        if self.calibration not in (None, "on", "off"):
            raise BioclassError(f"--calibration must be on or off, got {self.calibration!r}")
        if self.backend not in BACKENDS:
            raise BioclassError(f"unknown backend {self.backend!r} (use {' or '.join(BACKENDS)})")
        if self.event_edges not in EVENT_EDGES:
            raise BioclassError(
                f"--event-edges must be {' or '.join(EVENT_EDGES)}, got {self.event_edges!r}"
            )
        if not self.split_valleys >= 0:  # NaN too
            raise BioclassError(
                f"--split-valleys must be a depth in log-odds, 0 or more, got {self.split_valleys}"
            )
        if not self.merge and (self.event_edges != "window" or self.split_valleys > 0):
            raise BioclassError(
                "--event-edges centre and --split-valleys shape merged events; "
                "--no-merge writes windows"
            )
        if self.top_n is not None and self.top_n < 1:
            raise BioclassError(f"--top-n must be at least 1, got {self.top_n}")
        unknown = set(self.formats) - set(FORMATS)
        if unknown:
            raise BioclassError(f"unknown output format(s): {', '.join(sorted(unknown))}")
        if self.raven_combined and "raven" not in self.formats:
            object.__setattr__(self, "formats", (*self.formats, "raven"))

    def hop_for(self, window_seconds: float) -> float:
        """Seconds between window starts for windows of `window_seconds`."""
        if self.hop_seconds is not None:
            return self.hop_seconds
        if self.overlap is not None:
            return window_seconds * (1 - self.overlap)
        return window_seconds / 2  # 50 % overlap


def score_params(
    model_hashes: list[str],
    plan: WindowPlan,
    options: ScanOptions,
    device: torch.device,
    calibrated: bool = False,
) -> dict[str, Any]:
    """Everything that changes the stored scores; nothing that is applied afterwards.

    These go into each file's journal key: a change re-scores the files, anything else (the
    thresholds, the event rules, the formats) re-uses the stored scores. `calibrated`: whether
    the scores are calibrated (the calibration itself is in the checkpoint, so in its hash).
    """
    params = {
        "models": model_hashes,
        "bioclass": __version__,  # inference code can change scores in the last digits
        "sample_rate": plan.sample_rate,
        "window_samples": plan.window_samples,
        "hop_samples": plan.hop_samples,
        "channels": options.channels,
        "mode": options.mode,
        "precision": options.precision,
        "device": device.type,
        # Fast mode cuts blocks of batch_size windows; block edges can move scores slightly.
        "block": options.batch_size if options.mode == "fast" else None,
        "calibrated": calibrated,
    }
    if options.backend != "torch":
        # Another runtime's kernels round differently. Only added for it, so the parts that
        # torch scans stored before backends existed keep their keys.
        params["backend"] = options.backend
    return params
