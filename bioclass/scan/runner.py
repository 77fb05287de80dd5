"""`bioclass scan`: run trained models over long recordings and write detections.

Each file is an independent unit of work (decode -> window scores -> stored part); outputs are
assembled from the parts at the end, so an interrupted scan re-run with the same command
produces exactly what an uninterrupted one would. One scan at a time writes to an output (see
`lock`). This module ties the steps together; each lives in its own module (see the package
docstring).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from bioclass.core.errors import BioclassError
from bioclass.inference.backends import TORCH, load_backend
from bioclass.inference.drift import precision_drift
from bioclass.inference.exported import OnnxModel
from bioclass.inference.models import LoadedModels, load_models
from bioclass.inference.score import FileScores, WindowOutput, resolve_mode, score_file
from bioclass.inference.stream import WindowPlan
from bioclass.outputs import writers
from bioclass.runtime.precision import EXPORTED_PRECISIONS, resolve_precision
from bioclass.scan.assemble import check_output_folders, write_outputs
from bioclass.scan.channels import check_channel_exists
from bioclass.scan.classfilter import written_classes
from bioclass.scan.distribute import Distributor, ScoreJob
from bioclass.scan.events import Detector
from bioclass.scan.lock import OutputLock
from bioclass.scan.manifest import build_manifest, csv_metadata, write_manifest
from bioclass.scan.options import ScanOptions, score_params
from bioclass.scan.summary import ScanSummary
from bioclass.scan.thresholds import scan_thresholds
from bioclass.scan.work import FileOutcome, ShouldStop, run_in_order, score_or_resume

__all__ = ["ScanOptions", "ScanSummary", "scan"]

log = logging.getLogger(__name__)


def scan(
    files: list[Path],
    model_paths: list[Path],
    options: ScanOptions,
    on_file: Callable[[Path, float], None] | None = None,
    on_start: Callable[[], None] | None = None,
    distributor: Distributor | None = None,
) -> ScanSummary:
    """Scan `files` with the ensemble of `model_paths` and write the outputs `options` asks for.

    Each file is scored on its own and its scores stored as a part (see `journal`); the outputs
    are then assembled from the parts in input order, so a resumed scan writes byte for byte
    what an uninterrupted one would.

    Args:
        files: audio files, in output order.
        model_paths: checkpoints from `bioclass train` (`options.backend` torch), or ONNX files
            from `bioclass export` (onnxruntime).
        options: the user's choices.
        on_file: called after each file with its path and audio seconds (progress).
        on_start: called once every choice has been checked against the models (they load,
            the hop fits the window, the class filters name their classes), before the first
            file is read: where a progress bar can appear.
        distributor: scores the files on other processes or machines (`bioclass scan --ray`)
            instead of this process's threads; everything else is the same scan.

    Raises:
        OutputLocked: another scan is writing to the same outputs.
        BioclassError: e.g. `options.channels` is a channel that no input file has.
    """
    started = time.perf_counter()
    if distributor is not None and options.backend != TORCH:
        # Ray's workers load checkpoints; refused before anything starts.
        raise BioclassError(
            f"--ray scores with the torch backend: drop --backend {options.backend} or --ray"
        )
    check_output_folders(options)  # before the models load: an unwritable folder costs nothing
    check_channel_exists(files, options.channels)
    with OutputLock(writers.output_paths(options.out)["lock"]):
        try:
            return _scan(files, model_paths, options, on_file, on_start, started, distributor)
        finally:
            if distributor is not None:
                distributor.close()


def _scan(
    files: list[Path],
    model_paths: list[Path],
    options: ScanOptions,
    on_file: Callable[[Path, float], None] | None,
    on_start: Callable[[], None] | None,
    started: float,
    distributor: Distributor | None = None,
) -> ScanSummary:
    """The scan itself, run while the outputs are locked (arguments as for `scan`)."""
    if distributor is None:
        loaded, device, precision = load_backend(
            model_paths, options.backend, options.device, options.precision
        )
    else:
        loaded = load_models(model_paths)
        # The workers' device: this machine may have no GPU where they have one.
        device = distributor.start(model_paths, options)
        # auto is resolved on this machine's kind of device: workers of another CPU may differ
        # (give --precision for a cluster of mixed machines).
        precision = resolve_precision(device, options.precision)
    info = loaded.info
    # From here on the options say what runs (the journal key, the manifest's "precision").
    options = replace(options, precision=precision.used)
    plan = WindowPlan.from_seconds(
        info.sample_rate, info.window_seconds, options.hop_for(info.window_seconds)
    )
    if plan.hop_samples > plan.window_samples:
        # A scan's events are the windows it scored: a gap between windows is never looked at.
        raise BioclassError(
            f"--hop {plan.hop_seconds:g} s is longer than the model's window "
            f"({info.window_seconds:g} s): the audio between windows would never be scanned"
        )
    options = replace(options, mode=resolve_mode(options.mode, loaded.models, plan))
    thresholds = scan_thresholds(info, options)
    detector = Detector(
        list(info.classes),
        thresholds,
        info.background_label,
        written_classes(list(info.classes), options),
    )
    paths = writers.output_paths(options.out)
    score_maps = loaded.score_maps(options.calibration)
    calibrated = any(m.calibrated for m in score_maps)
    if options.calibration == "off" and info.calibration is not None and info.fitted_thresholds:
        # Training fits the thresholds on calibrated scores: on raw ones they mean less.
        log.warning(
            "--calibration off: the fitted thresholds were fitted on calibrated scores; "
            "give --threshold or --thresholds for raw scores"
        )
    params = score_params(loaded.hashes, plan, options, device, calibrated)
    output = WindowOutput.class_scores(score_maps)
    log.info(
        "scanning %d file(s) with %s in %s on %s: %s mode, precision %s, window %.3g s, hop %.3g s",
        len(files),
        ", ".join(p.name for p in loaded.paths),
        options.backend,
        device,
        options.mode,
        precision.describe(),
        info.window_seconds,
        plan.hop_seconds,
    )

    def score(path: Path, should_stop: ShouldStop) -> FileScores:
        return score_file(
            path,
            loaded.models,
            output,
            plan,
            channels=options.channels,
            batch_size=options.batch_size,
            device=device,
            mode=options.mode,
            precision=options.precision,
            should_stop=should_stop,
        )

    def work(path: Path, should_stop: ShouldStop) -> FileOutcome:
        return score_or_resume(path, paths["parts"], params, score, should_stop)

    if on_start is not None:
        on_start()
    summary = ScanSummary(n_files=len(files))
    outcomes: list[FileOutcome] = []

    def consume(outcome: FileOutcome) -> None:
        outcomes.append(outcome.light())  # the scores are on disk; keep memory flat
        summary.count(outcome)
        if on_file is not None:
            on_file(outcome.path, outcome.duration_s)

    def enough() -> bool:
        return summary.too_many_failures(options.max_failures)

    if distributor is None:
        run_in_order(files, work, options.workers, consume, enough)
    else:
        job = ScoreJob(plan, options, output, params, paths["parts"])
        distributor.run(files, job, consume, enough)
    summary.stopped_early = len(outcomes) < len(files)
    metadata = csv_metadata(loaded, plan) if options.metadata else None
    write_outputs(outcomes, detector, options, summary, info.sample_rate, metadata)
    summary.wall_seconds = time.perf_counter() - started
    manifest = build_manifest(loaded, thresholds, plan, options, summary, device)
    drift = None
    if distributor is None:  # Ray workers may run on another kind of device than this one
        drift = _precision_drift(loaded, output, plan, options, device, outcomes)
    manifest.update(
        precision_asked=precision.asked,
        precision_reason=precision.reason,
        precision_drift=drift,
    )
    write_manifest(paths["manifest"], manifest, summary)
    return summary


def _precision_drift(
    loaded: LoadedModels,
    output: WindowOutput,
    plan: WindowPlan,
    options: ScanOptions,
    device: torch.device,
    outcomes: list[FileOutcome],
) -> dict[str, Any] | None:
    """The manifest's `precision_drift`: for a scan in bf16 or AMP, its scores against float32
    on the first windows of the first scanned file; for int8 exports, the check each passed when
    it was made; None in float32 (or when the file can no longer be read, with a warning)."""
    if options.precision in EXPORTED_PRECISIONS:
        checks = [
            {"model": str(m.path), **m.metadata.get("int8_check", {})}
            for m in loaded.models
            if isinstance(m, OnnxModel) and m.metadata.get("precision") == "int8"
        ]
        return {"against": "fp32", "measured": "by bioclass export --int8", "models": checks}
    if options.precision == "fp32":
        return None
    scanned = next((o.path for o in outcomes if o.error is None), None)
    if scanned is None:
        return None
    try:
        drift = precision_drift(
            scanned, loaded.models, output, plan, options.channels, device, options.precision
        )
    except BioclassError as exc:  # the file changed or vanished since it was scanned
        log.warning("precision drift not measured: %s", exc)
        return None
    log.info(
        "%s against fp32 on the first %d windows of %s: top class the same on %.1f %%, scores "
        "differ by at most %.4f (mean %.5f)",
        options.precision,
        drift["windows"],
        scanned,
        100 * drift["top_class_agreement"],
        drift["max_score_diff"],
        drift["mean_score_diff"],
    )
    return drift
