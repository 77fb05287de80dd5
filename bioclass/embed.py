"""`bioclass embed`: per-window embeddings of long recordings from any checkpoint, for users'
own clustering, search and visualisation.

It is the scanner without the classification layer: the same streaming reads (bounded memory),
the same windows, exact or fast (shared trunk) inference, and the same handling of broken files.
The embedding is the model's penultimate layer h (what a classifier's last layer sees, and what
`bioclass pretrain` learns).

Windows follow scan's rule at its default hop: a recording's last window, zero-padded past the
end, holds at least half a window of audio (a recording shorter than that gets its one window),
so no row describes a few hundredths of a second of sound and mostly padding. A manifest beside
the table records what made it (model hash, window, hop, versions), as scan's does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from bioclass.audio import AudioError
from bioclass.core.atomic import atomic_write_text, check_output_folder
from bioclass.core.errors import BioclassError
from bioclass.inference.models import load_models, prepare_for_inference
from bioclass.inference.score import (
    FileScores,
    FileScoringError,
    WindowOutput,
    resolve_mode,
    score_file,
)
from bioclass.inference.stream import WindowPlan
from bioclass.outputs import writers
from bioclass.outputs.provenance import provenance
from bioclass.outputs.timestamps import parse_timestamp, start_datetimes
from bioclass.runtime.device import pick_device
from bioclass.runtime.precision import resolve_precision

if TYPE_CHECKING:
    from bioclass.inference.ray_pool import RayPool, SpanJob

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbedOptions:
    """What the user chose (the field names are the `bioclass embed` parameter names)."""

    out: Path  # .parquet or .csv; unreadable files go to `<stem>.failed.csv` beside it
    window_seconds: float | None = None  # None: the checkpoint's clip (or patch) length
    hop_seconds: float | None = None  # None: the window (no overlap)
    channels: str | int = "mix"
    batch_size: int = 64
    device: str = "auto"
    mode: str = "exact"  # as for `bioclass scan`, but exact by default
    precision: str = "auto"  # auto | fp32 | bf16 | amp (as for `bioclass scan`)


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
    mode: str = ""  # as run (fast falls back to exact where windows are too short)
    device: str = ""
    failed: list[dict[str, str]] = field(default_factory=list)
    damaged: list[dict[str, str]] = field(default_factory=list)  # file, note (used anyway)
    outputs: dict[str, str] = field(default_factory=dict)


def embed(
    files: list[Path],
    model_path: Path,
    options: EmbedOptions,
    on_file: Callable[[Path], None] | None = None,
    pool: RayPool | None = None,
) -> EmbedSummary:
    """Write one row per window: file, channel, start_time, end_time[, datetime], e000, ...,
    the failed table and the manifest.

    Args:
        files: recordings, in output order.
        model_path: a classifier (`train`) or an encoder (`pretrain`) checkpoint.
        options: the user's choices.
        on_file: progress callback.
        pool: Ray workers to embed on (`bioclass embed --ray`) instead of this process; the
            table is byte for byte the same (see `inference.ray_pool`). Closed at the end.
    """
    try:
        return _embed(files, model_path, options, on_file, pool)
    finally:
        if pool is not None:
            pool.close()


def _embed(
    files: list[Path],
    model_path: Path,
    options: EmbedOptions,
    on_file: Callable[[Path], None] | None,
    pool: RayPool | None,
) -> EmbedSummary:
    """`embed` itself (arguments as there)."""
    started = time.perf_counter()
    out = options.out
    writers.check_scores_path(out, "--out")
    check_output_folder(out.parent)  # before the model loads: an unwritable folder costs nothing
    loaded = load_models([model_path], need_classes=False)
    model, info = loaded.models[0], loaded.info
    if pool is None:
        dev = pick_device(options.device)
        prepare_for_inference(model, dev)
    else:  # the workers' device: this machine may have no GPU where they have one
        dev = pool.start([model_path], options.device, embedding=True)
    precision = resolve_precision(dev, options.precision)
    window = options.window_seconds if options.window_seconds is not None else info.window_seconds
    if window <= 0:
        raise BioclassError(f"--window must be positive, got {window:g}")
    hop = options.hop_seconds if options.hop_seconds is not None else window
    plan = WindowPlan.from_seconds(info.sample_rate, window, hop)
    mode = resolve_mode(options.mode, [model], plan)
    columns = [f"e{i:03d}" for i in range(model.embed_dim)]
    # The datetime column appears when any file's name carries a start time (as in scan).
    text_columns = ("datetime",) if any(parse_timestamp(p) for p in files) else ()
    summary = EmbedSummary(
        n_files=len(files),
        dim=model.embed_dim,
        window_seconds=window,
        hop_seconds=plan.hop_seconds,
        mode=mode,
        device=str(dev),
    )
    log.info(
        "embedding %d file(s) with %s on %s: %d-d, window %.3g s, hop %.3g s",
        len(files),
        model_path.name,
        dev,
        model.embed_dim,
        window,
        summary.hop_seconds,
    )
    matrix = writers.ScoreMatrix(out)
    if pool is None:

        def score(path: Path) -> FileScores:
            return score_file(
                path,
                [model],
                WindowOutput.embedding(),
                plan,
                options.channels,
                options.batch_size,
                dev,
                mode,
                precision.used,
            )

        results = _local_results(files, score)
    else:
        from bioclass.inference.ray_pool import SpanJob  # noqa: F811 (at run time only here)

        job = SpanJob(
            plan, mode, options.batch_size, options.channels, precision.used,
            WindowOutput.embedding(),
        )  # fmt: skip
        results = _pool_results(files, pool, job)
    try:
        for path, result in results:
            if isinstance(result, str):
                summary.failed.append({"file": str(path), "error": result})
                log.warning("skipped %s", result)
            else:
                if result.note:
                    summary.damaged.append({"file": str(path), "note": result.note})
                    log.warning("%s: %s", path, result.note)
                for s in result.streams:
                    keep = kept_windows(s.starts_s, s.ends_s, window)
                    starts, ends = s.starts_s[keep], s.ends_s[keep]
                    frame = pd.DataFrame(
                        {
                            "file": [str(path)] * len(starts),
                            "channel": pd.array([s.channel] * len(starts), dtype="Int64"),
                            "start_time": np.round(starts, 4),
                            "end_time": np.round(ends, 4),
                        }
                    )
                    if text_columns:
                        frame["datetime"] = start_datetimes(path, frame["start_time"])
                    vectors = pd.DataFrame(s.scores[keep].astype(np.float32), columns=columns)
                    matrix.add(pd.concat([frame, vectors], axis=1))
                    summary.n_windows += len(starts)
                summary.audio_seconds += max(s.duration_s for s in result.streams)
            if on_file is not None:
                on_file(path)
        matrix.commit(columns, text_columns)
    except BaseException:
        matrix.discard()
        raise
    summary.outputs["embeddings"] = str(out)
    failed_path = writers.output_paths(out)["failed"]
    failed = pd.DataFrame(summary.failed, columns=["file", "error"])
    atomic_write_text(failed_path, failed.to_csv(index=False, lineterminator="\n"))
    summary.outputs["failed"] = str(failed_path)
    summary.wall_seconds = time.perf_counter() - started
    manifest_path = writers.output_paths(out)["manifest"]
    summary.outputs["manifest"] = str(manifest_path)
    manifest = {
        **provenance([model_path], list(loaded.hashes)),
        "embedding": "penultimate layer",
        "dim": summary.dim,
        "sample_rate": info.sample_rate,
        **asdict(options),
        "window_seconds": window,
        "hop_seconds": summary.hop_seconds,
        "mode": mode,
        "device": str(dev),
        "precision": precision.used,
        "precision_asked": precision.asked,
        "precision_reason": precision.reason,
        "min_last_window_seconds": window / 2,
        "files_total": summary.n_files,
        "files_embedded": summary.n_files - len(summary.failed),
        "files_failed": len(summary.failed),
        "files_damaged": summary.damaged,
        "windows": summary.n_windows,
        "audio_hours": summary.audio_seconds / 3600,
        "wall_seconds": round(summary.wall_seconds, 3),
        "outputs": dict(summary.outputs),
    }
    writers.write_manifest(manifest_path, manifest)
    return summary


def _local_results(
    files: list[Path], score: Callable[[Path], FileScores]
) -> Iterator[tuple[Path, FileScores | str]]:
    """Each file's embeddings, or the line it fails with, in input order."""
    for path in files:
        try:
            yield path, score(path)
        except (AudioError, FileScoringError) as exc:
            yield path, str(exc)


def _pool_results(
    files: list[Path], pool: RayPool, job: SpanJob
) -> Iterator[tuple[Path, FileScores | str]]:
    """The same from Ray workers: files finish in any order, and are handed on in input order
    (those finished early wait in memory: embeddings are small next to audio)."""
    finished = pool.score_files(dict(enumerate(files)), job)
    waiting: dict[int, FileScores | str] = {}
    for i, path in enumerate(files):
        while i not in waiting:
            j, result = next(finished)
            waiting[j] = result
        result = waiting.pop(i)
        if not isinstance(result, str):
            pool.progress.file_done(max(s.duration_s for s in result.streams))
        yield path, result


def kept_windows(starts_s: np.ndarray, ends_s: np.ndarray, window_s: float) -> np.ndarray:
    """Which windows to keep: all but a last one holding less than half a window of audio
    (scan's windows at its default hop, half a window, never do), unless it is the only one."""
    keep = np.ones(len(starts_s), dtype=bool)
    if len(starts_s) > 1 and ends_s[-1] - starts_s[-1] < window_s / 2 - 1e-9:
        keep[-1] = False
    return keep
