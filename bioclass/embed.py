"""`bioclass embed`: per-window embeddings of long recordings from any checkpoint, for users'
own clustering, search and visualisation.

It is the scanner without the classification layer: the same streaming reads (bounded memory),
the same windows, exact or fast (shared trunk) inference, and the same handling of broken files.
The embedding is the model's penultimate layer h (what a classifier's last layer sees, and what
`bioclass pretrain` learns).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.audio import AudioError
from bioclass.checkpoint import load_model
from bioclass.core.atomic import atomic_write_text
from bioclass.core.errors import BioclassError
from bioclass.inference.score import EMBEDDING, prepare_for_inference, resolve_mode, score_file
from bioclass.inference.stream import WindowPlan
from bioclass.outputs import writers
from bioclass.runtime.device import pick_device
from bioclass.runtime.precision import check_inference_precision

log = logging.getLogger(__name__)


@dataclass
class EmbedSummary:
    """What an embedding run did."""

    n_files: int = 0
    n_windows: int = 0
    dim: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    window_seconds: float = 0.0
    hop_seconds: float = 0.0
    failed: list[dict[str, str]] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)


def checkpoint_window(ckpt: dict) -> float:
    """The window a checkpoint was trained on: the clip length, or an encoder's patch length."""
    if ckpt.get("kind") == "encoder":
        return float(ckpt.get("window_seconds") or ckpt["recipe"]["pretrain"]["patch_seconds"])
    return float(ckpt["recipe"]["audio"]["clip_seconds"])


def embed(
    files: list[Path],
    model_path: Path,
    out: Path,
    window_seconds: float | None = None,
    hop_seconds: float | None = None,
    channels: str | int = "mix",
    batch_size: int = 64,
    device: str = "auto",
    mode: str = "exact",
    precision: str = "fp32",
    on_file: Callable[[Path], None] | None = None,
) -> EmbedSummary:
    """Write one row per window: file, channel, start_time, end_time, e000, e001, ...

    Args:
        files: recordings, in output order.
        model_path: a classifier (`train`) or an encoder (`pretrain`) checkpoint.
        out: `.parquet` or `.csv` output; unreadable files go to `<stem>.failed.csv` beside it.
        window_seconds: window length; default: the checkpoint's clip (or patch) length.
        hop_seconds: hop between windows; default: the window (no overlap).
        channels, batch_size, device, mode, precision: as for `bioclass scan`.
        on_file: progress callback.
    """
    started = time.perf_counter()
    writers.check_scores_path(out)
    model, ckpt = load_model(model_path)
    dev = pick_device(device)
    check_inference_precision(dev, precision)
    prepare_for_inference(model, dev)
    window = window_seconds if window_seconds is not None else checkpoint_window(ckpt)
    if window <= 0:
        raise BioclassError(f"--window must be positive, got {window:g}")
    hop = hop_seconds if hop_seconds is not None else window
    plan = WindowPlan.from_seconds(model.frontend.config.sample_rate, window, hop)
    mode = resolve_mode(mode, [model], plan)
    columns = [f"e{i:03d}" for i in range(model.embed_dim)]
    summary = EmbedSummary(n_files=len(files), dim=model.embed_dim, window_seconds=window,
                           hop_seconds=plan.hop_samples / plan.sample_rate)
    log.info("embedding %d file(s) with %s on %s: %d-d, window %.3g s, hop %.3g s", len(files),
             model_path.name, dev, model.embed_dim, window, summary.hop_seconds)
    matrix = writers.ScoreMatrix(out)
    try:
        for path in files:
            try:
                result = score_file(path, [model], EMBEDDING, plan, channels, batch_size, dev,
                                    mode, precision)
            except AudioError as exc:
                summary.failed.append({"file": str(path), "error": str(exc)})
                log.warning("skipped %s", exc)
            else:
                if result.note:
                    log.warning("%s: %s", path, result.note)
                for s in result.streams:
                    frame = pd.DataFrame({
                        "file": [str(path)] * len(s.starts_s),
                        "channel": pd.array([s.channel] * len(s.starts_s), dtype="Int64"),
                        "start_time": np.round(s.starts_s, 4),
                        "end_time": np.round(s.ends_s, 4),
                    })
                    vectors = pd.DataFrame(s.scores.astype(np.float32), columns=columns)
                    matrix.add(pd.concat([frame, vectors], axis=1))
                    summary.n_windows += len(s.starts_s)
                summary.audio_seconds += max(s.duration_s for s in result.streams)
            if on_file is not None:
                on_file(path)
        matrix.commit(columns)
    except BaseException:
        matrix.discard()
        raise
    summary.outputs["embeddings"] = str(out)
    failed_path = writers.output_paths(out)["failed"]
    failed = pd.DataFrame(summary.failed, columns=["file", "error"])
    atomic_write_text(failed_path, failed.to_csv(index=False, lineterminator="\n"))
    summary.outputs["failed"] = str(failed_path)
    summary.wall_seconds = time.perf_counter() - started
    return summary
