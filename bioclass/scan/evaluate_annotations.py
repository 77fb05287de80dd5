"""`bioclass evaluate SOURCE --annotations TABLES`: the commands' side of evaluating against
annotation tables.

The evaluation floor computes the metrics but may not run the scanner (it sits below it), so the
two steps that need the scanner live here: scanning the annotated recordings when SOURCE is a
model, and re-deriving a scan's events from a score matrix. After either, SOURCE is what the
evaluation floor reads: detections, window scores, classes and thresholds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bioclass.core.console import DeferredProgress, console
from bioclass.core.errors import BioclassError
from bioclass.evaluation.annotated import (
    AnnotationReport,
    AnnotationSettings,
    evaluate_against_annotations,
)
from bioclass.evaluation.ground_truth import GroundTruth, load_ground_truth
from bioclass.evaluation.sources import (
    EvaluationInputs,
    SourceError,
    manifest_beside_detections,
    manifest_of_scores,
    read_detections,
    read_score_matrix,
    scores_named_by,
    source_kind,
)
from bioclass.evaluation.thresholds import choose_thresholds
from bioclass.scan.classfilter import written_classes
from bioclass.scan.events import Detector, events_from_score_matrix
from bioclass.scan.options import ScanOptions
from bioclass.scan.runner import scan


@dataclass(frozen=True)
class ScanChoices:
    """How a model is scanned before it is evaluated (None: the scan's default)."""

    hop_seconds: float | None = None
    mode: str | None = None
    batch_size: int = 64
    device: str = "auto"
    scan_out: Path | None = None  # keep the scan here (resumable); default: a temporary folder

    def given(self) -> list[str]:
        named = {"--hop": self.hop_seconds, "--mode": self.mode, "--scan-out": self.scan_out}
        return [flag for flag, value in named.items() if value is not None]


@dataclass(frozen=True)
class ThresholdChoices:
    """Thresholds to apply instead of the stored ones (scan's --threshold / --thresholds)."""

    threshold: float | None = None
    thresholds_csv: Path | None = None

    def given(self) -> list[str]:
        named = {"--threshold": self.threshold, "--thresholds": self.thresholds_csv}
        return [flag for flag, value in named.items() if value is not None]


@dataclass(frozen=True)
class EventChoices:
    """Event rules to apply instead of the scan's (scan's --event-edges / --split-valleys):
    for a model, how its scan makes events; for a score matrix, instead of its manifest's."""

    event_edges: str | None = None
    split_valleys: float | None = None

    def given(self) -> list[str]:
        named = {"--event-edges": self.event_edges, "--split-valleys": self.split_valleys}
        return [flag for flag, value in named.items() if value is not None]

    def over(self, options: ScanOptions) -> ScanOptions:
        """`options` with the given rules in place of theirs."""
        chosen = {
            "event_edges": self.event_edges,
            "split_valleys": self.split_valleys,
        }
        return replace(options, **{k: v for k, v in chosen.items() if v is not None})


def evaluate_source(
    source: Path,
    tables: Sequence[str | Path],
    settings: AnnotationSettings,
    *,
    audio_root: Path | None = None,
    label_column: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    extent: Path | None = None,
    thresholds: ThresholdChoices | None = None,
    scan_choices: ScanChoices | None = None,
    event_choices: EventChoices | None = None,
) -> AnnotationReport:
    """Evaluate a model, a detections CSV or a score matrix against annotation tables.

    The source and the options are checked before the tables are read (reading them opens
    every recording's header), and the tables before a model scans anything.

    Raises:
        BioclassError: a wrong combination of source and options, or any problem the reading
            or the evaluation finds (one line each).
    """
    thresholds = thresholds or ThresholdChoices()
    scan_choices = scan_choices or ScanChoices()
    event_choices = event_choices or EventChoices()
    kind = source_kind(source)
    if kind != "model" and scan_choices.given():
        raise BioclassError(
            f"{' and '.join(scan_choices.given())} choose how a model is scanned; {source} is "
            f"a {'detections CSV' if kind == 'detections' else 'score matrix'}, already scanned"
        )
    if kind != "detections" and settings.absent is not None:
        raise BioclassError(
            f"--absent is for a detections CSV, which lists only recordings with detections; "
            f"the scan of {source} lists every recording it scanned"
        )
    if kind == "detections" and thresholds.given():
        raise BioclassError(
            f"{' and '.join(thresholds.given())}: the detections in {source} were thresholded "
            "by the scan that wrote them; to evaluate other thresholds, give its score matrix "
            "(scan --scores) or the model instead"
        )
    if kind == "detections" and event_choices.given():
        raise BioclassError(
            f"{' and '.join(event_choices.given())}: the events in {source} were made by the "
            "scan that wrote them; to evaluate other event rules, give its score matrix "
            "(scan --scores) or the model instead"
        )
    truth = load_ground_truth(tables, audio_root, label_column, mapping, extent)
    if kind == "model":
        inputs = scan_for_evaluation(source, truth, thresholds, scan_choices, event_choices)
    elif kind == "detections":
        inputs = detections_inputs(source)
    else:
        inputs = scores_inputs(source, thresholds, event_choices)
    return evaluate_against_annotations(inputs, truth, settings)


def detections_inputs(path: Path) -> EvaluationInputs:
    """A detections CSV, with the classes, thresholds and score matrix of the scan manifest
    beside it when there is one."""
    detections = read_detections(path)
    manifest, manifest_path = manifest_beside_detections(path)
    if manifest is None:
        return EvaluationInputs(
            str(path),
            "detections",
            detections,
            notes=[
                f"window level skipped: it needs the window scores, and no scan manifest "
                f"({manifest_path.name}) beside {path} names them; evaluate the score matrix "
                "(scan --scores) or the model instead"
            ],
        )
    notes = []
    scores = None
    named = scores_named_by(manifest)
    found = _existing(named, manifest_path.parent) if named is not None else None
    if named is None:
        notes.append(
            f"window level skipped: the scan that wrote {path} kept no window scores "
            "(scan --scores FILE keeps them)"
        )
    elif found is None:
        notes.append(
            f"window level skipped: the score matrix {named} named in {manifest_path} is gone"
        )
    else:
        scores, _ = read_score_matrix(found)
        _check_same_classes(found, _columns(scores), manifest["classes"], manifest_path)
    classes = list(manifest["classes"])
    filters = manifest_filters(manifest, manifest_path)
    return EvaluationInputs(
        str(path),
        "detections",
        detections,
        scores=scores,
        classes=classes,
        background_label=str(manifest.get("background_label", "background")),
        thresholds=dict(manifest.get("thresholds") or {}),
        threshold_origin=f"the scan's, from {manifest_path.name}",
        notes=notes,
        written=_written(classes, filters),
        top_n=filters.top_n,
    )


def manifest_filters(manifest: dict, where: Path) -> ScanOptions:
    """The scan's `--classes`, `--exclude-classes` and `--top-n`, as its manifest records them
    (manifests from before those options record none: no filter, one label per window).

    Raises:
        SourceError: values no scan writes, or names the manifest's classes do not have.
    """
    try:
        chosen = manifest.get("classes_filter")
        options = ScanOptions(
            out=Path("-"),
            classes_filter=None if chosen is None else tuple(map(str, chosen)),
            exclude_classes=tuple(map(str, manifest.get("exclude_classes") or ())),
            top_n=None if manifest.get("top_n") is None else int(manifest["top_n"]),
        )
        written_classes(list(manifest["classes"]), options)  # names it does not have
    except (BioclassError, TypeError, ValueError) as exc:
        raise SourceError(f"{where}: its class filters cannot be used ({exc})") from None
    return options


def _written(classes: list[str], filters: ScanOptions) -> list[str] | None:
    keep = written_classes(classes, filters)
    return None if keep.all() else [c for c, k in zip(classes, keep, strict=True) if k]


def scores_inputs(
    path: Path, thresholds: ThresholdChoices, event_choices: EventChoices | None = None
) -> EvaluationInputs:
    """A score matrix, and the events a scan makes of it with the chosen thresholds and event
    rules (default: its manifest's)."""
    matrix, classes = read_score_matrix(path)
    manifest = manifest_of_scores(path)
    notes = []
    if manifest is not None:
        _check_same_classes(path, classes, manifest["classes"], Path("its manifest"))
        background = str(manifest.get("background_label", "background"))
        stored = manifest.get("thresholds")
        # The events the scan wrote: its rules, class filters and labels per window included.
        options = replace(
            manifest_filters(manifest, path),
            keep_background=bool(manifest.get("keep_background", False)),
            merge=bool(manifest.get("merge", True)),
            min_gap_s=float(manifest.get("min_gap_s", 0.0)),
            min_duration_s=float(manifest.get("min_duration_s", 0.0)),
            event_edges=str(manifest.get("event_edges", "window")),
            split_valleys=float(manifest.get("split_valleys", 0.0)),
        )
        origin = "the scan's, from its manifest"
    else:
        background, stored, options, origin = "background", None, ScanOptions(out=Path("-")), ""
        notes.append(
            f"no scan manifest names {path}: events are made with the scan's default rules "
            "(merged, background not reported)"
        )
    if event_choices is not None:
        options = event_choices.over(options)
    chosen, origin = choose_thresholds(
        classes, stored, origin, thresholds.threshold, thresholds.thresholds_csv
    )
    written = _written(classes, options)
    detector = Detector(
        classes,
        np.array([chosen[c] for c in classes]),
        background,
        None if written is None else written_classes(classes, options),
    )
    events = events_from_score_matrix(matrix, detector, options)
    return EvaluationInputs(
        str(path),
        "scores",
        events[["file", "channel", "start_time", "end_time", "label", "score"]],
        scores=matrix,
        classes=classes,
        background_label=background,
        thresholds=chosen,
        threshold_origin=origin,
        notes=notes,
        written=written,
        top_n=options.top_n,
    )


def scan_for_evaluation(
    model: Path,
    truth: GroundTruth,
    thresholds: ThresholdChoices,
    choices: ScanChoices,
    event_choices: EventChoices | None = None,
) -> EvaluationInputs:
    """Scan the annotated recordings with `model` (window scores kept) and read the result.

    Into `choices.scan_out` (kept: re-running resumes, and the detections can be evaluated
    again without scanning), else into a temporary folder removed afterwards.
    """
    files = [Path(r) for r in truth.recordings]
    with tempfile.TemporaryDirectory(prefix="bioclass-evaluate-") as tmp:
        folder = choices.scan_out if choices.scan_out is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / "detections.csv"
        options = ScanOptions(
            out=out,
            hop_seconds=choices.hop_seconds,
            mode=choices.mode or "fast",
            device=choices.device,
            batch_size=choices.batch_size,
            threshold=thresholds.threshold,
            thresholds_csv=thresholds.thresholds_csv,
            scores_path=folder / "detections.scores.parquet",
        )
        if event_choices is not None:
            options = event_choices.over(options)
        # The bar appears once the model and the hop have been checked.
        with DeferredProgress("scanning", len(files)) as progress:
            try:
                summary = scan(
                    files,
                    [model],
                    options,
                    on_file=lambda path, seconds: progress.update(advance=1, info=path.name),
                    on_start=progress.start,
                )
            except BioclassError:
                progress.hide()
                raise
        console.print(
            f"scanned {summary.n_scanned + summary.n_resumed} annotated recording(s) "
            f"({summary.audio_seconds / 3600:.3f} h) with {model} in {summary.wall_seconds:.1f} s"
            + (f" -> {folder}" if choices.scan_out is not None else ""),
            highlight=False,
        )
        inputs = detections_inputs(out)
    notes = list(inputs.notes)
    if summary.failed:
        first = summary.failed[0]
        notes.append(
            f"{len(summary.failed)} annotated recording(s) could not be read and are skipped; "
            f"first: {first['error']}"
        )
    if summary.damaged:
        first = summary.damaged[0]
        notes.append(
            f"{len(summary.damaged)} annotated recording(s) are damaged, scanned in part or "
            f"repaired; first: {first['file']}: {first['note']}"
        )
    if thresholds.thresholds_csv is not None:
        origin = f"--thresholds {thresholds.thresholds_csv}"
    elif thresholds.threshold is not None:
        origin = f"--threshold {thresholds.threshold:g}"
    else:
        origin = "the model's fitted thresholds (0.5 where none was fitted)"
    return replace(inputs, source=str(model), kind="model", threshold_origin=origin, notes=notes)


def _existing(named: Path, beside: Path) -> Path | None:
    """The score matrix a manifest names: as written (relative to where the scan ran), else
    relative to the manifest's folder, else by name beside it (a moved scan folder)."""
    for candidate in (named, beside / named, beside / named.name):
        if candidate.is_file():
            return candidate
    return None


def _columns(matrix) -> list[str]:
    return [c for c in matrix.columns if c not in ("file", "channel", "start_time", "end_time")]


def _check_same_classes(path: Path, columns: list[str], classes: list, manifest: Path) -> None:
    if list(columns) != list(classes):
        raise SourceError(
            f"{path}: its class columns ({', '.join(columns)}) are not the classes of "
            f"{manifest} ({', '.join(map(str, classes))}); is it the matrix of that scan?"
        )


__all__ = [
    "EventChoices",
    "ScanChoices",
    "ThresholdChoices",
    "detections_inputs",
    "evaluate_source",
    "scan_for_evaluation",
    "scores_inputs",
]
