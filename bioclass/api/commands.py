"""`bioclass.scan`, `train`, `evaluate` and `embed`: the commands as Python functions.

Each calls the procedure its command calls (`scan.runner.scan`, `training.loop.train`,
`evaluation.evaluate.evaluate_model` or `scan.evaluate_annotations.evaluate_source`,
`embed.embed`), after checking its arguments as the command line's options are checked, and
returns what the command prints as data. Nothing is printed unless `progress=True`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bioclass.api import checks
from bioclass.api.reporting import file_progress, reporting
from bioclass.audio.discover import collect_inputs
from bioclass.core.errors import BioclassError
from bioclass.embed import EmbedOptions, EmbedSummary
from bioclass.evaluation.annotated import AnnotationReport, AnnotationSettings
from bioclass.recipe import Recipe, load_recipe
from bioclass.scan.options import DEFAULT_FORMATS, ScanOptions
from bioclass.scan.summary import ScanSummary
from bioclass.training.loop import TrainResult

Paths = str | Path | Sequence[str | Path]


@dataclass
class ScanResult:
    """What `bioclass.scan` did: the detections (the rows of the detections CSV, unrounded) and
    the summary (counts, failed and damaged files, output locations)."""

    detections: pd.DataFrame
    summary: ScanSummary

    @property
    def outputs(self) -> dict[str, str]:
        """Output name (csv, raven, audacity, scores, failed, manifest) -> where it went."""
        return self.summary.outputs


@dataclass
class EvaluationResult:
    """`bioclass.evaluate` on labelled clips: the metrics `bioclass evaluate --out` writes, each
    clip's scores and prediction, and the clips that could not be read (or were repaired)."""

    metrics: dict[str, Any]
    predictions: pd.DataFrame
    unreadable: pd.DataFrame


@dataclass
class EmbedResult:
    """`bioclass.embed`: one row per window (file, channel, start_time, end_time, e000...)."""

    embeddings: pd.DataFrame
    summary: EmbedSummary


def _paths(what: str, inputs: Paths) -> list[str | Path]:
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    if not items or not all(isinstance(i, (str, Path)) for i in items):
        raise BioclassError(f"{what}: give recordings as a path or a list of paths")
    return items


def _model_paths(model: Any) -> list[Path]:
    """A checkpoint path, a loaded `Model`, or a list of them (an ensemble)."""
    items = [model] if isinstance(model, (str, Path)) or hasattr(model, "path") else model
    try:
        paths = [Path(m.path) if hasattr(m, "path") else checks.path("model", m) for m in items]
    except TypeError:
        paths = []
    if not paths:
        raise BioclassError("model: give a checkpoint path, a loaded model or a list of them")
    return paths


def scan(
    inputs: Paths,
    model: Any,
    out: str | Path,
    *,
    hop: float | None = None,
    from_list: str | Path | None = None,
    progress: bool = False,
    **options: Any,
) -> ScanResult:
    """Scan recordings as `bioclass scan INPUTS --model MODEL --out OUT` does, writing the same
    outputs, and return the detections.

    Args:
        inputs: files, folders or glob patterns.
        model: a checkpoint path or a loaded `Model`; a list of them for an ensemble.
        out: the detections CSV; the other outputs and the scan's parts go beside it.
        hop: seconds between window starts (`hop_seconds`).
        from_list: a text file of paths, one per line.
        progress: show the progress bar and the report's warnings.
        **options: `bioclass scan`'s options by their parameter names: overlap, channels, mode,
            precision, device, batch_size, workers, threshold, thresholds_csv, keep_background,
            merge, min_gap_s, min_duration_s, event_edges, split_valleys, formats, scores_path,
            max_failures, metadata, calibration, backend (`onnxruntime`: `model` is an ONNX file
            from `bioclass export`).

    Raises:
        BioclassError: a bad argument or input, a refusal (another scan writing to `out`, an
            unwritable folder), or not one recording could be scanned.
    """
    from bioclass.scan.runner import scan as run_scan

    checks.flag("progress", progress)
    given = checks.checked("scan", {"hop_seconds": hop, **options}, checks.SCAN)
    given = {k: v for k, v in given.items() if v is not None}
    given.setdefault("formats", DEFAULT_FORMATS)
    if str(out) == "-":
        raise BioclassError("scan: out must be a file path (the detections are returned)")
    opts = ScanOptions(out=checks.path("out", out), collect_events=True, **given)
    paths = _model_paths(model)
    files = collect_inputs(_paths("scan", inputs), from_list)
    with reporting(progress), file_progress(progress, "scanning", len(files)) as advance:
        summary = run_scan(files, paths, opts, on_file=lambda path, seconds: advance(path))
    if summary.stopped_early:
        raise BioclassError(
            f"stopped after {summary.n_failed} unreadable files (max_failures); fix or remove "
            "them, then run the same scan again to continue"
        )
    if summary.all_failed:
        raise BioclassError(
            f"none of the {summary.n_files} file(s) could be scanned: the reasons are in "
            f"{summary.outputs.get('failed')}"
        )
    detections = summary.events if summary.events is not None else pd.DataFrame()
    return ScanResult(detections.reset_index(drop=True), summary)


def _override_list(overrides: Mapping[str, Any] | Sequence[str]) -> list[str]:
    """`{"train.lr": 5e-4}` or `["train.lr=5e-4"]` -> the `--set` strings (values as JSON,
    which YAML reads back as they were: numbers, strings, lists, true/false, null)."""
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    if isinstance(overrides, str) or not all(isinstance(o, str) for o in overrides):
        raise BioclassError(
            "overrides: give a mapping {'section.key': value} or a list of 'section.key=value'"
        )
    return list(overrides)


def train(
    recipe: str | Path | Recipe | None = None,
    out: str | Path | None = None,
    *,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    device: str = "auto",
    resume: str | Path | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train a classifier as `bioclass train RECIPE --out OUT --set ...` does.

    Args:
        recipe: a recipe file, or a `bioclass.recipe.Recipe`.
        out: the run directory (new or empty; default `runs/<recipe>-<date>-<time>`).
        overrides: recipe values to change, e.g. `{"train.iterations": 200}` (with a file).
        device: auto, cpu, cuda or mps.
        resume: continue the interrupted run in this directory (no recipe, out or overrides).
        progress: show the progress bars, tables and warnings `bioclass train` prints.

    Returns:
        `run_dir` (holds `model.pt`), `best` (iteration, weights, metric, metrics) and
        `history` (a row per validation).
    """
    from bioclass.training.loop import train as run_training

    checks.flag("progress", progress)
    checks.one_of(checks.DEVICES)("device", device)
    sets = _override_list(overrides)
    if resume is not None:
        if recipe is not None or sets or out is not None:
            raise BioclassError(
                "resume continues with the saved recipe: give no recipe, out or overrides"
            )
        with reporting(progress):
            return run_training(None, checks.path("resume", resume), device=device, resume=True)
    if isinstance(recipe, Recipe):
        if sets:
            raise BioclassError(
                "overrides apply to a recipe file; change a Recipe with dataclasses.replace"
            )
        loaded, stem = recipe, "recipe"
    elif isinstance(recipe, (str, Path)):
        loaded, stem = load_recipe(recipe, sets), Path(recipe).stem
    else:
        raise BioclassError("train: give a recipe file (or a Recipe), or resume=RUN_DIR")
    if out is None:
        out = Path("runs") / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    with reporting(progress):
        return run_training(loaded, checks.path("out", out), device=device)


def distill(
    teachers: str | Path | Sequence[str | Path],
    student: str,
    out: str | Path | None = None,
    *,
    recipe: str | Path | None = None,
    overrides: Mapping[str, Any] | Sequence[str] = (),
    device: str = "auto",
    progress: bool = False,
) -> TrainResult:
    """Train a `student` architecture on the scores of trained `teachers`, as `bioclass distill
    TEACHERS --student NAME --out OUT` does (resume an interrupted run with `train(resume=...)`).

    Args:
        teachers: one checkpoint or several (an ensemble: the mean of their scores).
        student: the student's architecture (a `bioclass models` name).
        out: the run directory (default `runs/distill-<student>-<date>-<time>`).
        recipe: the student's data and training (default: the first teacher's recipe).
        overrides: recipe values to change, e.g. `{"distill.temperature": 2}`.
        device, progress: as for `train`.

    Returns:
        as `train`.
    """
    from bioclass.training.distill import distill_recipe
    from bioclass.training.loop import train as run_training

    checks.flag("progress", progress)
    checks.one_of(checks.DEVICES)("device", device)
    listed = [teachers] if isinstance(teachers, (str, Path)) else list(teachers)
    paths = [checks.path("teachers", t) for t in listed]
    if not isinstance(student, str):
        raise BioclassError(f"student must be a model name, got {student!r}")
    source = None if recipe is None else checks.path("recipe", recipe)
    loaded = distill_recipe(paths, student, source, _override_list(overrides))
    if out is None:
        out = Path("runs") / f"distill-{loaded.model.name}-{datetime.now():%Y%m%d-%H%M%S}"
    with reporting(progress):
        return run_training(loaded, checks.path("out", out), device=device)


def evaluate(
    model: Any,
    data: str | Path | None = None,
    *,
    annotations: Paths | None = None,
    split: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    pooling: str | None = None,
    calibration: str | None = None,
    progress: bool = False,
    **annotation_options: Any,
) -> EvaluationResult | AnnotationReport:
    """Evaluate as `bioclass evaluate` does, in either of its two forms.

    `evaluate(model, data)`: the model on labelled clips (class folders or a labels CSV,
    `split` for one split of it) -> `EvaluationResult`.

    `evaluate(source, annotations=tables)`: a model, a detections CSV or a score matrix against
    annotation tables -> `AnnotationReport` (`summary`, `events`, `recordings`, `windows`,
    `detections`, `boxes`, `to_json()`). `annotation_options` are that form's options by their
    parameter names: audio_root, label_column, label_map (dict old -> new, or None to drop),
    extent, min_overlap_s, threshold, thresholds_csv, bootstrap, seed, absent, scan_out,
    hop_seconds, mode, event_edges, split_valleys.
    """
    checks.flag("progress", progress)
    checks.count("batch_size", batch_size)
    checks.one_of(checks.DEVICES)("device", device)
    if annotations is not None:
        if data is not None or split is not None or pooling is not None or calibration is not None:
            raise BioclassError(
                "data, split, pooling and calibration belong to evaluating labelled clips, "
                "not to annotations"
            )
        with reporting(progress):
            return _evaluate_annotations(
                _model_paths(model)[0], annotations, batch_size, device, annotation_options
            )
    if annotation_options:
        raise BioclassError(
            f"{', '.join(sorted(annotation_options))}: unknown argument(s) for evaluating "
            "labelled clips (annotation options need annotations=)"
        )
    if data is None:
        raise BioclassError("evaluate: give labelled data, or annotations= tables")
    from bioclass.evaluation.evaluate import evaluate_model

    with reporting(progress):
        metrics, predictions, bad = evaluate_model(
            _model_paths(model)[0],
            checks.path("data", data),
            split,
            batch_size,
            device,
            pooling,
            calibration,
        )
    return EvaluationResult(metrics, predictions, bad)


ANNOTATION_RULES = {
    "audio_root": checks.path,
    "label_column": lambda name, value: str(value),
    "label_map": lambda name, value: dict(value),
    "extent": checks.path,
    "min_overlap_s": checks.positive,
    "threshold": checks.fraction,
    "thresholds_csv": checks.path,
    "bootstrap": lambda name, value: 0 if value == 0 else checks.count(name, value),
    "seed": lambda name, value: int(value),
    "absent": checks.one_of(("skip", "empty")),
    "scan_out": checks.path,
    "hop_seconds": checks.positive,
    "mode": checks.one_of(checks.MODES),
    "event_edges": checks.SCAN["event_edges"],
    "split_valleys": checks.SCAN["split_valleys"],
}


def _evaluate_annotations(
    source: Path, tables: Paths, batch_size: int, device: str, options: dict[str, Any]
) -> AnnotationReport:
    from bioclass.scan.evaluate_annotations import (
        EventChoices,
        ScanChoices,
        ThresholdChoices,
        evaluate_source,
    )

    opts = checks.checked("evaluate", options, ANNOTATION_RULES)
    defaults = AnnotationSettings()
    settings = AnnotationSettings(
        min_overlap_s=opts.get("min_overlap_s"),
        bootstrap=opts.get("bootstrap", defaults.bootstrap),
        seed=opts.get("seed", defaults.seed),
        absent=opts.get("absent"),
    )
    return evaluate_source(
        source,
        _paths("annotations", tables),
        settings,
        audio_root=opts.get("audio_root"),
        label_column=opts.get("label_column"),
        mapping=opts.get("label_map"),
        extent=opts.get("extent"),
        thresholds=ThresholdChoices(opts.get("threshold"), opts.get("thresholds_csv")),
        scan_choices=ScanChoices(
            opts.get("hop_seconds"), opts.get("mode"), batch_size, device, opts.get("scan_out")
        ),
        event_choices=EventChoices(opts.get("event_edges"), opts.get("split_valleys")),
    )


def embed(
    model: Any,
    inputs: Paths,
    out: str | Path | None = None,
    *,
    hop: float | None = None,
    window: float | None = None,
    from_list: str | Path | None = None,
    progress: bool = False,
    **options: Any,
) -> EmbedResult:
    """Per-window embeddings as `bioclass embed MODEL INPUTS --out OUT` writes them, returned.

    Args:
        model: a classifier or an encoder checkpoint (or a loaded `Model`).
        inputs: files, folders or glob patterns.
        out: the table to write (.parquet or .csv, the failed-files table beside it); None:
            nothing is kept on disk.
        hop, window: seconds (defaults: the checkpoint's window, no overlap).
        **options: channels, mode (default exact), precision, device, batch_size.
    """
    from bioclass.embed import embed as run_embed

    checks.flag("progress", progress)
    given = checks.checked(
        "embed", {"hop_seconds": hop, "window_seconds": window, **options}, checks.EMBED
    )
    given = {k: v for k, v in given.items() if v is not None}
    model_path = _model_paths(model)[0]
    files = collect_inputs(_paths("embed", inputs), from_list)
    with tempfile.TemporaryDirectory(prefix="bioclass-embed-") as scratch:
        target = (
            checks.path("out", out) if out is not None else Path(scratch) / "embeddings.parquet"
        )
        opts = EmbedOptions(out=target, **given)
        with reporting(progress), file_progress(progress, "embedding", len(files)) as advance:
            summary = run_embed(files, model_path, opts, on_file=advance)
        table = _read_table(target)
    if files and len(summary.failed) == len(files):
        raise BioclassError(
            f"none of the {len(files)} file(s) could be read; first: {summary.failed[0]['error']}"
        )
    if out is None:
        summary.outputs.clear()  # the temporary files are gone
    return EmbedResult(table, summary)


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)
