"""Evaluation of detections and window scores against annotation tables.

Ties the pieces together: which recordings and classes are evaluated (and what is left out,
said in notes), then the window, event and recording levels with bootstrap intervals over the
recordings. The source has been read (`sources`) and the tables too (`ground_truth`); this
module computes, it does not print or write.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bioclass.core.errors import BioclassError
from bioclass.evaluation.bootstrap import LEVEL, recording_draws
from bioclass.evaluation.event_level import OUTSIDE, EventLevel, Events, event_level
from bioclass.evaluation.ground_truth import GroundTruth
from bioclass.evaluation.intervals import contained
from bioclass.evaluation.sources import EvaluationInputs
from bioclass.evaluation.thresholds import DEFAULT_THRESHOLD
from bioclass.evaluation.window_level import (
    DEFAULT_OVERLAP_FRACTION,
    WindowLevel,
    label_windows,
    window_level,
)

ABSENT_POLICIES = ("skip", "empty")


class EvaluationError(BioclassError):
    """An evaluation that cannot give a meaningful result from these inputs."""


@dataclass(frozen=True)
class AnnotationSettings:
    """How annotation evaluation counts.

    Attributes:
        min_overlap_s: seconds a box must cover of a window to make it positive (capped at
            the shorter of the two); None: half the shorter of window and box.
        bootstrap: replicates of the bootstrap over recordings (0: no intervals).
        seed: the bootstrap's seed.
        level: interval coverage.
        absent: annotated recordings a detections CSV never mentions (and no score matrix
            lists): 'skip' them, or count them as scanned with nothing found ('empty'); None
            when not chosen (skip).
    """

    min_overlap_s: float | None = None
    bootstrap: int = 1000
    seed: int = 0
    level: float = LEVEL
    absent: str | None = None


@dataclass
class AnnotationReport:
    """Everything an annotation evaluation found, ready to print and write."""

    summary: dict[str, Any]
    events: pd.DataFrame
    recordings: pd.DataFrame
    windows: pd.DataFrame | None
    sweep: pd.DataFrame | None
    detections: pd.DataFrame  # each detection of the source and what became of it
    boxes: pd.DataFrame  # each evaluated box and whether it was found
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-able data (NaN written as null)."""
        return {
            **self.summary,
            "notes": list(self.notes),
            "windows": _level_json(self.windows),
            "sweep": None if self.sweep is None else _records(self.sweep),
            "events": _level_json(self.events),
            "recordings_level": _level_json(self.recordings),
        }


def evaluate_against_annotations(
    inputs: EvaluationInputs, truth: GroundTruth, settings: AnnotationSettings
) -> AnnotationReport:
    """Score a source (detections, and window scores when there are any) against annotations.

    Raises:
        EvaluationError: no annotated recording in the source, one name matching several
            recordings, channels scanned separately, or nothing at all to evaluate.
    """
    if settings.absent is not None and settings.absent not in ABSENT_POLICIES:
        raise EvaluationError(f"absent recordings: use one of {', '.join(ABSENT_POLICIES)}")
    notes = list(inputs.notes)
    source = inputs.source
    detections = inputs.detections
    scores = inputs.scores
    files = list(dict.fromkeys([*detections["file"], *([] if scores is None else scores["file"])]))
    aligned = align_files(files, truth.recordings, Path(source).parent, source, notes)
    det_rec = detections["file"].map(aligned)
    score_rec = None if scores is None else scores["file"].map(aligned)
    for table, rec in ((detections, det_rec), (scores, score_rec)):
        if table is not None:
            _check_one_channel(table, rec, source)

    recordings = _evaluated_recordings(truth, det_rec, score_rec, inputs, settings, notes)
    index = {r: i for i, r in enumerate(recordings)}
    classes = _evaluated_classes(inputs, truth, notes)
    if not classes:
        raise EvaluationError(
            f"nothing to evaluate: neither the annotations nor {source} have a label"
            if inputs.classes is None
            else f"nothing to evaluate: the model behind {source} has no class besides "
            f"{inputs.background_label!r}"
        )
    class_index = {c: i for i, c in enumerate(classes)}
    extent = truth.extent[truth.extent["file"].isin(index)]
    ext_rec = extent["file"].map(index).to_numpy(np.int64)

    boxes = truth.boxes[truth.boxes["file"].isin(index)].reset_index(drop=True)
    _note_ignored_box_labels(boxes, class_index, inputs, notes)
    boxes = boxes[boxes["label"].isin(class_index)].reset_index(drop=True)
    box_events = Events(
        boxes["file"].map(index).to_numpy(np.int64),
        boxes["label"].map(class_index).to_numpy(np.int64),
        boxes["start_time"].to_numpy(float),
        boxes["end_time"].to_numpy(float),
    )

    keep = _detections_to_keep(detections, det_rec, index, class_index, inputs, notes)
    kept = detections[keep].reset_index(drop=True)
    kept_rec = det_rec[keep].map(index).to_numpy(np.int64)
    det_events = Events(
        kept_rec,
        kept["label"].map(class_index).to_numpy(np.int64),
        kept["start_time"].to_numpy(float),
        kept["end_time"].to_numpy(float),
    )
    midpoint = (det_events.start + det_events.end) / 2
    inside = contained(
        midpoint,
        midpoint,
        kept_rec,
        extent["start_time"].to_numpy(float),
        extent["end_time"].to_numpy(float),
        ext_rec,
    )

    draws = recording_draws(len(recordings), settings.bootstrap, settings.seed)
    events = event_level(
        det_events, inside, box_events, classes, len(recordings), draws, settings.level
    )
    if not len(boxes) and not (events.outcome != OUTSIDE).any():
        raise EvaluationError(
            f"nothing to evaluate: the annotations have no box of the model's classes "
            f"({', '.join(classes)}) on the {len(recordings)} evaluated recording(s), and "
            f"{source} has no detection inside their annotated extent"
        )

    windows = None
    if scores is not None:
        windows = _window_level(
            scores, score_rec, index, inputs, classes, box_events, extent, ext_rec, draws, settings
        )
        if windows is None:
            notes.append(
                f"window level skipped: no window of {source} lies wholly inside the annotated "
                "extent of the evaluated recordings"
            )
    if len(recordings) == 1 and settings.bootstrap:
        notes.append(
            "one recording evaluated: the bootstrap over recordings can only redraw it, so the "
            "intervals are degenerate (a point); annotate more recordings for real intervals"
        )
    summary = _summary(inputs, truth, recordings, classes, boxes, events, windows, settings)
    return AnnotationReport(
        summary=summary,
        events=events.events,
        recordings=events.recordings,
        windows=None if windows is None else windows.table,
        sweep=None if windows is None else windows.sweep,
        detections=_detection_detail(kept, det_rec[keep], events, boxes),
        boxes=_box_detail(boxes, kept, events),
        curves={} if windows is None else windows.curves,
        notes=notes,
    )


def align_files(
    files: list[str], recordings: list[str], base: Path, source: str, notes: list[str]
) -> dict[str, str | None]:
    """Each file a source names -> the annotated recording it is, or None.

    Compared in full (as written, then resolved, relative paths against the source's folder),
    then by file name when exactly one annotated recording has that name: a detections table
    made on another machine names the same recordings under other folders.

    Raises:
        EvaluationError: a name shared by several annotated recordings, or two of the source's
            files taken for one recording.
    """
    known = set(recordings)
    by_name: dict[str, list[str]] = {}
    for r in recordings:
        by_name.setdefault(Path(r).name, []).append(r)
    aligned: dict[str, str | None] = {}
    claimed: dict[str, str] = {}
    by_name_only = []
    for f in files:
        match = f if f in known else None
        if match is None:
            path = Path(f).expanduser()
            resolved = str((path if path.is_absolute() else base / path).resolve())
            match = resolved if resolved in known else None
        if match is None:
            candidates = by_name.get(Path(f).name, [])
            if len(candidates) > 1:
                raise EvaluationError(
                    f"{source} names {f}, and several annotated recordings have that name "
                    f"({candidates[0]}, {candidates[1]}): give the source with the "
                    "recordings' full paths"
                )
            if candidates:
                match = candidates[0]
                by_name_only.append((f, match))
        if match is not None and claimed.setdefault(match, f) != f:
            raise EvaluationError(
                f"{source} names both {claimed[match]} and {f}, which are taken for the one "
                f"annotated recording {match}; give the source with full paths"
            )
        aligned[f] = match
    if by_name_only:
        f, match = by_name_only[0]
        notes.append(
            f"{len(by_name_only)} file(s) of {source} matched annotated recordings by file "
            f"name only (their folders differ), e.g. {f} -> {match}"
        )
    return aligned


def _check_one_channel(table: pd.DataFrame, rec: pd.Series, source: str) -> None:
    channels = table["channel"]
    if not channels.notna().any():
        return
    counts = channels[rec.notna()].groupby(rec[rec.notna()]).nunique()
    several = counts[counts > 1]
    if len(several):
        raise EvaluationError(
            f"{source}: {several.index[0]} was scanned channel by channel "
            f"({int(several.iloc[0])} channels); annotations are compared per recording, so "
            "scan with --channels mix (the default) or one channel"
        )


def _evaluated_recordings(
    truth: GroundTruth,
    det_rec: pd.Series,
    score_rec: pd.Series | None,
    inputs: EvaluationInputs,
    settings: AnnotationSettings,
    notes: list[str],
) -> list[str]:
    """The annotated recordings the source covers; the others are skipped, with a note."""
    annotated = truth.recordings
    if score_rec is not None:
        covered = set(score_rec.dropna())
        why = "has no window of them (not scanned, or unreadable)"
        if settings.absent is not None:
            notes.append(
                f"--absent {settings.absent} is not needed: the score matrix of {inputs.source} "
                "lists every recording scanned"
            )
    elif settings.absent == "empty":
        covered = set(annotated)
        why = ""
    else:
        covered = set(det_rec.dropna())
        why = "never mentions them"
    kept = [r for r in annotated if r in covered]
    skipped = [r for r in annotated if r not in covered]
    source = inputs.source
    if not kept:
        if score_rec is None and not len(det_rec):
            raise EvaluationError(
                f"{source} has no detections, so none of the {len(annotated)} annotated "
                "recording(s) can be told apart from one never scanned; if the scan found "
                "nothing, pass --absent empty (or evaluate its score matrix)"
            )
        named = (det_rec.index if score_rec is None else score_rec.index).size
        first_source = (
            inputs.detections["file"].iloc[0]
            if score_rec is None
            else inputs.scores["file"].iloc[0]  # type: ignore[index]
        )
        raise EvaluationError(
            f"none of the {len(annotated)} annotated recording(s) appear in {source} "
            f"({named} rows; first annotated: {annotated[0]}; first in the source: "
            f"{first_source}): are these the tables of the scanned recordings? "
            "(paths are compared in full, then by file name)"
        )
    if skipped:
        n_boxes = int(truth.boxes["file"].isin(skipped).sum())
        hint = (
            " A detections CSV alone cannot tell a recording with nothing detected from one "
            "never scanned: pass --absent empty to count them as scanned with nothing found, "
            "or evaluate the scan's score matrix."
            if score_rec is None
            else ""
        )
        notes.append(
            f"{len(skipped)} annotated recording(s) skipped with their {n_boxes} box(es): "
            f"{source} {why}; first: {skipped[0]}.{hint}"
        )
    return kept


def _evaluated_classes(inputs: EvaluationInputs, truth: GroundTruth, notes: list[str]) -> list[str]:
    background = inputs.background_label
    if inputs.top_n is not None and inputs.top_n > 1:
        notes.append(
            f"{inputs.source} was scanned with --top-n {inputs.top_n} (its manifest): a window "
            f"carries up to {inputs.top_n} labels, each counted as a detection of its class"
        )
    if inputs.classes is not None and inputs.written is not None:
        # The scan never wrote the others: their boxes would all be misses of a search
        # nobody ran.
        left_out = [c for c in inputs.classes if c not in inputs.written and c != background]
        notes.append(
            f"{inputs.source} was scanned with --classes/--exclude-classes (its manifest): only "
            f"the {len(inputs.written)} class(es) it wrote are evaluated "
            f"({', '.join(inputs.written)}); the model's other class(es) "
            f"({', '.join(left_out) or 'none'}) are left out, their boxes not counted as misses"
        )
        return [c for c in inputs.classes if c in inputs.written and c != background]
    if inputs.classes is not None:
        return [c for c in inputs.classes if c != background]
    notes.append(
        f"{inputs.source}: no scan manifest beside it, so the model's classes are not known; "
        "every label of the annotations and the detections is evaluated"
    )
    labels = set(truth.boxes["label"]) | set(inputs.detections["label"])
    return sorted(labels - {background})


def _note_ignored_box_labels(
    boxes: pd.DataFrame, class_index: dict[str, int], inputs: EvaluationInputs, notes: list[str]
) -> None:
    unknown = Counter(label for label in boxes["label"] if label not in class_index)
    if inputs.written is not None:
        # Classes the model has but the scan did not write: said apart (see _evaluated_classes).
        model_classes = set(inputs.classes or ())
        model_classes.discard(inputs.background_label)
        filtered = {k: n for k, n in unknown.items() if k in model_classes}
        if filtered:
            listed = ", ".join(f"{label} ({n})" for label, n in sorted(filtered.items()))
            notes.append(
                f"box(es) of class(es) the scan did not write, ignored, not counted as misses: "
                f"{listed}"
            )
        unknown = Counter({k: n for k, n in unknown.items() if k not in model_classes})
    if not unknown:
        return
    listed = ", ".join(
        f"{label} ({n} box{'es' if n > 1 else ''}"
        + (", the model's background class" if label == inputs.background_label else "")
        + ")"
        for label, n in sorted(unknown.items())
    )
    first = sorted(unknown)[0]
    notes.append(
        f"annotation label(s) the model does not know: {listed}; ignored, not counted as misses "
        "(their time still counts as negative for the model's classes). Rename them with "
        f"--map {first}=CLASS, or drop them with --map {first}="
    )


def _detections_to_keep(
    detections: pd.DataFrame,
    det_rec: pd.Series,
    index: dict[str, int],
    class_index: dict[str, int],
    inputs: EvaluationInputs,
    notes: list[str],
) -> np.ndarray:
    """Detections on evaluated recordings of evaluated classes; the rest noted."""
    source = inputs.source
    unannotated = det_rec.isna().to_numpy()
    if unannotated.any():
        n_files = detections.loc[unannotated, "file"].nunique()
        notes.append(
            f"{int(unannotated.sum())} detection(s) on {n_files} recording(s) no annotation "
            f"table covers: ignored; first: {detections.loc[unannotated, 'file'].iloc[0]}"
        )
    skipped = ~unannotated & ~det_rec.isin(index).to_numpy()
    if skipped.any():
        notes.append(f"{int(skipped.sum())} detection(s) on skipped recordings: ignored")
    on_evaluated = ~unannotated & ~skipped
    known = detections["label"].isin(class_index).to_numpy()
    other = Counter(detections.loc[on_evaluated & ~known, "label"])
    if other:
        listed = ", ".join(
            f"{label} ({n})"
            + (" (background)" if label == inputs.background_label else " (not a model class)")
            for label, n in sorted(other.items())
        )
        notes.append(f"detections of labels not evaluated, ignored: {listed} in {source}")
    return on_evaluated & known


def _window_level(
    scores: pd.DataFrame,
    score_rec: pd.Series,
    index: dict[str, int],
    inputs: EvaluationInputs,
    classes: list[str],
    boxes: Events,
    extent: pd.DataFrame,
    ext_rec: np.ndarray,
    draws: np.ndarray,
    settings: AnnotationSettings,
) -> WindowLevel | None:
    on = score_rec.isin(index).to_numpy()
    table = scores[on].reset_index(drop=True)
    rec = score_rec[on].map(index).to_numpy(np.int64)
    start, end = table["start_time"].to_numpy(float), table["end_time"].to_numpy(float)
    inside = contained(
        start,
        end,
        rec,
        extent["start_time"].to_numpy(float),
        extent["end_time"].to_numpy(float),
        ext_rec,
    )
    if not inside.any():
        return None
    table, rec, start, end = table[inside], rec[inside], start[inside], end[inside]
    score_classes = [
        c for c in table.columns if c not in ("file", "channel", "start_time", "end_time")
    ]
    missing = [c for c in classes if c not in score_classes]
    if missing:
        raise EvaluationError(
            f"{inputs.source}: the score matrix has no column for class(es) "
            f"{', '.join(missing)} of the model"
        )
    labels = label_windows(
        rec,
        start,
        end,
        boxes.recording,
        boxes.start,
        boxes.end,
        boxes.cls,
        len(classes),
        settings.min_overlap_s,
    )
    thresholds = inputs.thresholds or {}
    return window_level(
        table[score_classes].to_numpy(np.float64),
        score_classes,
        classes,
        labels,
        {c: thresholds.get(c, DEFAULT_THRESHOLD) for c in classes},
        rec,
        draws,
        settings.level,
    )


def _summary(
    inputs: EvaluationInputs,
    truth: GroundTruth,
    recordings: list[str],
    classes: list[str],
    boxes: pd.DataFrame,
    events: EventLevel,
    windows: WindowLevel | None,
    settings: AnnotationSettings,
) -> dict[str, Any]:
    extent = truth.extent[truth.extent["file"].isin(set(recordings))]
    overlap = (
        f"half the shorter of window and box ({DEFAULT_OVERLAP_FRACTION:g})"
        if settings.min_overlap_s is None
        else f"{settings.min_overlap_s:g} s (at most the shorter of window and box)"
    )
    return {
        "source": inputs.source,
        "source_kind": inputs.kind,
        "annotations": truth.tables,
        "recordings": len(recordings),
        "annotated_hours": float((extent["end_time"] - extent["start_time"]).sum()) / 3600,
        "classes": classes,
        # The scan's --classes/--exclude-classes left the model's other classes out.
        "classes_written_by_scan": inputs.written,
        "top_n": inputs.top_n,
        "background_label": inputs.background_label,
        "thresholds": inputs.thresholds,
        "threshold_origin": inputs.threshold_origin,
        "boxes": len(boxes),
        "detections_counted": int((events.outcome != OUTSIDE).sum()),
        "min_overlap": overlap,
        "bootstrap": {
            "replicates": settings.bootstrap,
            "seed": settings.seed,
            "level": settings.level,
            "unit": "recording",
        },
        "absent_recordings": settings.absent or "skip",
        "window_level": windows is not None,
    }


def _detection_detail(
    kept: pd.DataFrame, recording: pd.Series, events: EventLevel, boxes: pd.DataFrame
) -> pd.DataFrame:
    matched = events.matched_box
    hit = matched >= 0
    detail = pd.DataFrame(
        {
            "file": recording.to_numpy(),
            "start_time": kept["start_time"].to_numpy(),
            "end_time": kept["end_time"].to_numpy(),
            "label": kept["label"].to_numpy(),
            "score": kept["score"].to_numpy(),
            "outcome": events.outcome,
        }
    )
    # Which box (table and row) each true detection matched, for review in the tables.
    box_table = np.full(len(kept), "", dtype=object)
    box_row = pd.array([pd.NA] * len(kept), dtype="Int64")
    if hit.any():
        box_table[hit] = boxes["source"].to_numpy(object)[matched[hit]]
        box_row[hit] = boxes["row"].to_numpy()[matched[hit]]
    detail["box_table"] = box_table
    detail["box_row"] = box_row
    return detail


def _box_detail(boxes: pd.DataFrame, kept: pd.DataFrame, events: EventLevel) -> pd.DataFrame:
    detail = boxes[["file", "start_time", "end_time", "label", "source", "row"]].copy()
    detail["found"] = events.box_found
    by_box = np.full(len(boxes), np.nan)
    hit = events.matched_box >= 0
    by_box[events.matched_box[hit]] = kept["score"].to_numpy(float)[hit]
    detail["detection_score"] = by_box
    return detail


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _json_value(v) for k, v in row.items()} for row in table.to_dict(orient="records")]


def _level_json(table: pd.DataFrame | None) -> dict[str, Any] | None:
    if table is None:
        return None
    rows = _records(table)
    return {
        "per_class": {row.pop("label"): row for row in rows[:-1]},
        "all": {k: v for k, v in rows[-1].items() if k != "label"},
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) else float(value)
    if value is pd.NA:
        return None
    return value
