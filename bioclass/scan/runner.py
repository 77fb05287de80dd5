"""`bioclass scan`: run trained models over long recordings and write detections.

Each file is an independent unit of work (decode -> window scores -> stored part); outputs are
assembled from the parts at the end, so an interrupted scan re-run with the same command
produces exactly what an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bioclass import __version__
from bioclass.audio import AudioError
from bioclass.checkpoint import load_classifier, read_checkpoint
from bioclass.core.atomic import atomic_write_text
from bioclass.core.errors import BioclassError
from bioclass.evaluation.thresholds import read_thresholds_csv, resolve_thresholds
from bioclass.inference.score import (
    FileScores,
    prepare_for_inference,
    resolve_mode,
    score_file,
)
from bioclass.inference.stream import WindowPlan
from bioclass.models import Classifier
from bioclass.outputs import writers
from bioclass.outputs.timestamps import parse_timestamp
from bioclass.runtime.device import pick_device
from bioclass.runtime.precision import check_inference_precision
from bioclass.scan import events as ev
from bioclass.scan.journal import file_key, load_part, save_failure, save_result

log = logging.getLogger(__name__)

FORMATS = ("csv", "raven", "audacity")
DEFAULT_THRESHOLD = 0.5  # for classes without a fitted threshold


@dataclass(frozen=True)
class ScanOptions:
    """Everything the user chose on the command line (window settings come from the model)."""

    out: Path
    hop_seconds: float | None = None  # None: half the window (50 % overlap)
    channels: str | int = "mix"
    batch_size: int = 64
    workers: int = 1
    device: str = "auto"
    mode: str = "fast"  # fast (shared trunk per block) | exact (every window on its own)
    precision: str = "fp32"  # fp32 | bf16 | amp
    threshold: float | None = None  # None: fitted per-class thresholds (else 0.5)
    thresholds_csv: Path | None = None
    keep_background: bool = False
    merge: bool = True
    min_gap_s: float = 0.0
    min_duration_s: float = 0.0
    formats: tuple[str, ...] = ("csv",)
    scores_path: Path | None = None
    max_failures: int | None = None
    metadata: bool = False
    collect_events: bool = False  # keep the detections in memory (ScanSummary.events)


@dataclass
class LoadedModels:
    """An ensemble of checkpoints that agree on classes, rate and window."""

    models: list[Classifier]
    paths: list[Path]
    hashes: list[str]
    classes: list[str]
    activation: str
    sample_rate: int
    window_seconds: float
    background_label: str
    fitted_thresholds: dict[str, Any] | None


@dataclass
class ScanSummary:
    """What a scan did, for the terminal and the manifest."""

    n_files: int = 0
    n_scanned: int = 0
    n_resumed: int = 0
    n_failed: int = 0
    audio_seconds: float = 0.0
    wall_seconds: float = 0.0
    n_detections: int = 0
    outputs: dict[str, str] = field(default_factory=dict)
    stopped_early: bool = False
    failed: list[dict[str, str]] = field(default_factory=list)  # file, error
    damaged: list[dict[str, str]] = field(default_factory=list)  # file, note (partly scanned)
    events: pd.DataFrame | None = None  # the detections, when options.collect_events


def load_window_seconds(model_path: Path) -> float:
    """The window length (the training clip length) a checkpoint scans with."""
    return float(read_checkpoint(model_path)["recipe"]["audio"]["clip_seconds"])


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file (identifies the exact model used)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_models(paths: list[Path]) -> LoadedModels:
    """Load checkpoints for an ensemble; they must share classes, sample rate and window."""
    if not paths:
        raise BioclassError("give at least one --model checkpoint")
    models, ckpts = [], []
    for p in paths:
        model, ckpt = load_classifier(p)
        models.append(model)
        ckpts.append(ckpt)
    first = ckpts[0]
    window = float(first["recipe"]["audio"]["clip_seconds"])
    rate = int(first["frontend"]["sample_rate"])
    for p, c in zip(paths[1:], ckpts[1:], strict=True):
        if c["classes"] != first["classes"]:
            raise BioclassError(
                f"{p}: classes {c['classes']} differ from {paths[0]}'s {first['classes']}; "
                "an ensemble needs the same classes in the same order"
            )
        c_window = float(c["recipe"]["audio"]["clip_seconds"])
        if int(c["frontend"]["sample_rate"]) != rate or c_window != window:
            raise BioclassError(f"{p}: sample rate or window length differs from {paths[0]}")
        if c["score_activation"] != first["score_activation"]:
            raise BioclassError(f"{p}: trained with {c['score_activation']} scores, "
                                f"{paths[0]} with {first['score_activation']}")
    return LoadedModels(
        models=models,
        paths=list(paths),
        hashes=[sha256_file(p) for p in paths],
        classes=list(first["classes"]),
        activation=first["score_activation"],
        sample_rate=rate,
        window_seconds=window,
        background_label=first.get("background_label", "background"),
        fitted_thresholds=first.get("thresholds"),
    )


def _score_params(
    loaded: LoadedModels, plan: WindowPlan, options: ScanOptions, device: torch.device
) -> dict[str, Any]:
    # Everything that changes the stored scores; nothing that is applied afterwards.
    return {
        "models": loaded.hashes,
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
    }


def scan_thresholds(loaded: LoadedModels, options: ScanOptions) -> np.ndarray:
    """(C,) thresholds: --thresholds CSV > --threshold > fitted in the checkpoint > 0.5."""
    override = (
        read_thresholds_csv(options.thresholds_csv, loaded.classes)
        if options.thresholds_csv
        else None
    )
    fitted = None
    if options.threshold is None and loaded.fitted_thresholds:
        fitted = {k: v.get("threshold") for k, v in loaded.fitted_thresholds.items()}
    default = DEFAULT_THRESHOLD if options.threshold is None else options.threshold
    return resolve_thresholds(loaded.classes, default, fitted, override)


def scan(
    files: list[Path],
    model_paths: list[Path],
    options: ScanOptions,
    on_file: Callable[[Path, float], None] | None = None,
) -> ScanSummary:
    """Scan `files` with the ensemble of `model_paths` and write the outputs `options` asks for.

    Each file is scored on its own and its scores stored as a part (see `journal`); the outputs
    are then assembled from the parts in input order, so a resumed scan writes byte for byte
    what an uninterrupted one would.

    Args:
        files: audio files, in output order.
        model_paths: checkpoints from `bioclass train`.
        options: the user's choices.
        on_file: called after each file with its path and audio seconds (progress).
    """
    started = time.perf_counter()
    unknown = set(options.formats) - set(FORMATS)
    if unknown:
        raise BioclassError(f"unknown output format(s): {', '.join(sorted(unknown))}")
    if options.scores_path is not None:
        writers.check_scores_path(options.scores_path)
    loaded = load_models(model_paths)
    device = pick_device(options.device)
    check_inference_precision(device, options.precision)
    for m in loaded.models:
        prepare_for_inference(m, device)
    hop = options.hop_seconds if options.hop_seconds is not None else loaded.window_seconds / 2
    plan = WindowPlan.from_seconds(loaded.sample_rate, loaded.window_seconds, hop)
    options = replace(options, mode=resolve_mode(options.mode, loaded.models, plan))
    thresholds = scan_thresholds(loaded, options)
    paths = writers.output_paths(options.out)
    parts = paths["parts"]
    params = _score_params(loaded, plan, options, device)
    log.info(
        "scanning %d file(s) with %s on %s: %s mode, %s, window %.3g s, hop %.3g s",
        len(files), ", ".join(p.name for p in loaded.paths), device, options.mode,
        options.precision, loaded.window_seconds, plan.hop_samples / plan.sample_rate,
    )

    def work(path: Path) -> FileOutcome:
        """Score one file, or find its stored part."""
        try:
            key = file_key(path, params)
        except OSError as exc:
            return FileOutcome(path, None, error=f"{path}: cannot access file ({exc.strerror})")
        stored = load_part(parts, key)
        if isinstance(stored, str):
            return FileOutcome(path, key, error=stored, resumed=True)
        if stored is not None:
            return FileOutcome(path, key, result=stored, resumed=True)
        try:
            result = score_file(
                path, loaded.models, loaded.activation, plan, channels=options.channels,
                batch_size=options.batch_size, device=device, mode=options.mode,
                precision=options.precision, should_stop=cancel.is_set,
            )
        except AudioError as exc:
            save_failure(parts, key, path, str(exc))
            return FileOutcome(path, key, error=str(exc))
        save_result(parts, key, result)
        return FileOutcome(path, key, result=result)

    summary = ScanSummary(n_files=len(files))
    outcomes: list[FileOutcome] = []
    cancel = threading.Event()  # set on Ctrl-C: files in flight stop at their next block
    # Keep `workers` files in flight; results are consumed (and reported) in input order.
    n_workers = max(1, options.workers)
    queue, in_flight = iter(files), deque()
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        try:
            while not _too_many_failures(summary, options):
                while len(in_flight) < n_workers and (path := next(queue, None)) is not None:
                    in_flight.append(pool.submit(work, path))
                if not in_flight:
                    break
                outcome = in_flight.popleft().result()
                outcomes.append(outcome.light())
                _count(outcome, summary)
                if on_file is not None:
                    on_file(outcome.path, outcome.duration_s)
        except BaseException:
            cancel.set()
            raise
        finally:
            for future in in_flight:
                future.cancel()
    summary.stopped_early = len(outcomes) < len(files)
    _write_outputs(outcomes, loaded, thresholds, plan, options, paths, summary, parts)
    summary.wall_seconds = time.perf_counter() - started
    _write_manifest(loaded, thresholds, plan, options, paths, summary, device)
    return summary


@dataclass
class FileOutcome:
    """What happened to one file (the scores themselves stay on disk once counted)."""

    path: Path
    key: str | None
    result: FileScores | None = None
    error: str | None = None
    resumed: bool = False
    duration_s: float = 0.0
    note: str | None = None

    def __post_init__(self) -> None:
        if self.result is not None:
            self.duration_s = max((s.duration_s for s in self.result.streams), default=0.0)
            self.note = self.result.note

    def light(self) -> FileOutcome:
        """The same outcome without the score arrays (they are re-read from the part)."""
        return FileOutcome(self.path, self.key, None, self.error, self.resumed,
                           self.duration_s, self.note)


def _count(outcome: FileOutcome, summary: ScanSummary) -> None:
    if outcome.error is not None:
        summary.n_failed += 1
        summary.failed.append({"file": str(outcome.path), "error": outcome.error})
        log.warning("skipped %s", outcome.error)
        return
    summary.audio_seconds += outcome.duration_s
    summary.n_resumed += int(outcome.resumed)
    summary.n_scanned += int(not outcome.resumed)
    if outcome.note:
        summary.damaged.append({"file": str(outcome.path), "note": outcome.note})
        log.warning("%s: %s", outcome.path, outcome.note)


def _too_many_failures(summary: ScanSummary, options: ScanOptions) -> bool:
    return options.max_failures is not None and summary.n_failed >= options.max_failures


def _write_outputs(
    outcomes: list[FileOutcome],
    loaded: LoadedModels,
    thresholds: np.ndarray,
    plan: WindowPlan,
    options: ScanOptions,
    paths: dict[str, Path],
    summary: ScanSummary,
    parts: Path,
) -> None:
    """Assemble every output from the stored parts, file by file, in input order."""
    scanned = [o for o in outcomes if o.error is None]
    metadata = _run_metadata(loaded, plan) if options.metadata else None
    sinks: list[tuple[Any, Callable[[], None]]] = []
    csv = raven = matrix = None
    audacity_targets: dict[Path, Path] = {}
    if "csv" in options.formats:
        csv = writers.DetectionsCsv(
            options.out, with_channel=options.channels != "mix",
            with_datetime=any(parse_timestamp(o.path) for o in scanned),
            metadata=metadata, stage_dir=parts,
        )
        sinks.append((csv, csv.commit))
    if "raven" in options.formats:
        raven = writers.RavenTable(paths["selections"], 0.0, loaded.sample_rate / 2)
        sinks.append((raven, raven.commit))
    if "audacity" in options.formats:
        audacity_targets = writers.audacity_paths(paths["audacity_dir"],
                                                  [o.path for o in scanned])
    if options.scores_path is not None:
        matrix = writers.ScoreMatrix(options.scores_path)
        sinks.append((matrix, lambda: matrix.commit(loaded.classes)))
    collected = []
    try:
        for outcome in scanned:
            result = load_part(parts, outcome.key) if outcome.key else None
            if not isinstance(result, FileScores):
                raise BioclassError(f"the stored scores of {outcome.path} vanished from {parts} "
                                    "during the scan; re-run the same command")
            file_events = []
            for s in result.streams:
                labels, label_scores = ev.window_labels(
                    s.scores, thresholds, loaded.classes, loaded.background_label,
                    options.keep_background,
                )
                args = (str(outcome.path), s.channel, s.starts_s, s.ends_s, labels,
                        label_scores)
                if options.merge:
                    file_events.append(ev.merge_events(*args, min_gap_s=options.min_gap_s,
                                                       min_duration_s=options.min_duration_s))
                else:
                    file_events.append(ev.window_rows(*args))
                if matrix is not None:
                    matrix.add(ev.score_matrix(str(outcome.path), s.channel, s.starts_s,
                                               s.ends_s, s.scores, loaded.classes))
            events = pd.concat(file_events, ignore_index=True).sort_values(
                ["start_time", "channel", "label"], kind="mergesort", na_position="first"
            ).reset_index(drop=True)
            summary.n_detections += len(events)
            if csv is not None:
                csv.add(events)
            if raven is not None:
                raven.add(str(outcome.path), outcome.duration_s, events)
            if outcome.path in audacity_targets:
                atomic_write_text(audacity_targets[outcome.path],
                                          writers.audacity_labels(events))
            if options.collect_events:
                collected.append(events)
    except BaseException:
        for sink, _ in sinks:
            sink.discard()
        raise
    failed = pd.DataFrame(summary.failed, columns=["file", "error"])
    atomic_write_text(paths["failed"], failed.to_csv(index=False, lineterminator="\n"))
    summary.outputs["failed"] = str(paths["failed"])
    if raven is not None:
        summary.outputs["raven"] = str(paths["selections"])
    if audacity_targets or "audacity" in options.formats:
        summary.outputs["audacity"] = str(paths["audacity_dir"])
    if matrix is not None:
        summary.outputs["scores"] = str(options.scores_path)
    # The detections table goes last: its presence means everything else is complete.
    sinks.sort(key=lambda item: item[0] is csv)
    writers.commit_all(sinks)
    if csv is not None:
        summary.outputs["csv"] = "stdout" if str(options.out) == "-" else str(options.out)
    if options.collect_events:
        summary.events = (pd.concat(collected, ignore_index=True) if collected
                          else pd.DataFrame(columns=ev.EVENT_COLUMNS))


def _write_manifest(
    loaded: LoadedModels,
    thresholds: np.ndarray,
    plan: WindowPlan,
    options: ScanOptions,
    paths: dict[str, Path],
    summary: ScanSummary,
    device: torch.device,
) -> None:
    manifest = {
        "bioclass_version": __version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "models": [{"path": str(p.resolve()), "sha256": h}
                   for p, h in zip(loaded.paths, loaded.hashes, strict=True)],
        "classes": loaded.classes,
        "score_activation": loaded.activation,
        "background_label": loaded.background_label,
        "thresholds": dict(zip(loaded.classes, map(float, thresholds), strict=True)),
        "window_seconds": loaded.window_seconds,
        "hop_seconds": plan.hop_samples / plan.sample_rate,
        "sample_rate": plan.sample_rate,
        "channels": options.channels,
        "mode": options.mode,
        "precision": options.precision,
        "device": str(device),
        "batch_size": options.batch_size,
        "workers": options.workers,
        "keep_background": options.keep_background,
        "merge": options.merge,
        "min_gap_s": options.min_gap_s,
        "min_duration_s": options.min_duration_s,
        "files_total": summary.n_files,
        "files_scanned": summary.n_scanned,
        "files_resumed": summary.n_resumed,
        "files_failed": summary.n_failed,
        "files_damaged": summary.damaged,
        "stopped_early": summary.stopped_early,
        "audio_hours": summary.audio_seconds / 3600,
        "wall_seconds": round(summary.wall_seconds, 3),
        "detections": summary.n_detections,
        "outputs": dict(summary.outputs),
    }
    writers.write_manifest(paths["manifest"], manifest)
    summary.outputs["manifest"] = str(paths["manifest"])


def _run_metadata(loaded: LoadedModels, plan: WindowPlan) -> dict[str, Any]:
    return {
        "model": ";".join(p.name for p in loaded.paths),
        "model_sha256": ";".join(h[:12] for h in loaded.hashes),
        "hop_seconds": plan.hop_samples / plan.sample_rate,
        "bioclass_version": __version__,
    }
