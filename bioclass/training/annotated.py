"""From the recipe's `data.annotations`, `data.reviewed` and labelled clips to training and
validation windows (multi-label): every source becomes known stretches of recordings and boxes
in them, one corpus, split by recording group.

- Annotation tables (any format `read_annotations` reads): each annotated extent is a known
  stretch (the whole recording by default, or `data.extent`), each box a box.
- Reviewed detections (`review.csv` of `bioclass review`): the detection's span is a known
  stretch; `yes` makes it a box of the detection's label, a class name a box of that class, and
  `no` a hard negative (none of the model's classes there); rows without a verdict are skipped.
- Labelled clips (`data.root`, `data.labels_csv`): the clip is a known stretch and a box of its
  label filling it (the clip's label holds wherever a window of it is cut, as in clip
  training); a clip of the background label is a hard negative.

`data.label_map` renames (or, with null, drops) labels of all three before anything else; a
dropped label's stretches stay known and count as negatives for the other classes.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.annotations import (
    Annotations,
    annotated_extent,
    apply_label_mapping,
    read_annotations,
    read_review,
)
from bioclass.annotations.columns import Columns
from bioclass.annotations.read import detect_format
from bioclass.annotations.review import NO, YES
from bioclass.annotations.text import csv_records
from bioclass.audio.io import AudioError, AudioInfo, audio_info
from bioclass.audio.probe import bad_table, check_finite, join_bad, probe_headers
from bioclass.core.console import console
from bioclass.core.errors import BioclassError
from bioclass.data.clips import check_bad_fraction
from bioclass.data.labels import LabelError
from bioclass.data.prepare import clip_spec, read_label_table
from bioclass.data.window_dataset import (
    FixedWindows,
    RecordingReader,
    TrainingWindows,
    WindowedData,
)
from bioclass.data.window_split import NO_BOX, merged_groups, split_recordings
from bioclass.data.windows import OverlapRule, WindowCorpus
from bioclass.recipe.schema import Recipe

log = logging.getLogger(__name__)

STRETCH_COLUMNS = ["file", "start_time", "end_time", "kind", "label", "group", "split", "source"]


@dataclass
class _Sources:
    """What the sources say, before recordings get indices."""

    infos: dict[str, AudioInfo] = field(default_factory=dict)
    stretches: list[dict] = field(default_factory=list)  # STRETCH_COLUMNS + negative
    boxes: list[dict] = field(default_factory=list)  # file, start_time, end_time, label, where
    bad: pd.DataFrame = field(default_factory=lambda: bad_table([]))

    def info(self, file: str) -> AudioInfo:
        """The recording's header, read once; a float recording's samples are checked once
        too, so NaN/Inf (set to 0 by every window read) is reported in bad_files.csv and an
        all-NaN recording refused, as for clips."""
        if file not in self.infos:
            info = audio_info(file)
            check = check_finite(file, info=info)
            if check is not None and check.note:
                row = {"file": file, "error": f"{file}: {check.note}", "kept": True}
                self.bad = join_bad(self.bad, bad_table([row]))
            self.infos[file] = info
        return self.infos[file]


def load_windows(recipe: Recipe) -> WindowedData:
    """Read every source of the recipe, split the recordings and build the window datasets.

    Raises:
        BioclassError: one line naming the table and row (or key) of any problem.
    """
    d = recipe.data
    annotations = (
        read_annotations(d.annotations, audio_root=d.audio_root, label_column=d.label_column)
        if d.annotations
        else None
    )
    clips = read_label_table(recipe) if d.root or d.labels_csv else None
    label_map = dict(d.label_map)
    _check_label_map(recipe, label_map, annotations, clips)
    sources = _Sources()
    if annotations is not None:
        _add_annotations(recipe, annotations, label_map, sources)
    if d.reviewed:
        _add_reviews(recipe, _known_names(recipe, sources, clips), label_map, sources)
    if clips is not None:
        _add_clips(recipe, clips, label_map, sources)
    classes = _classes(recipe, sources)
    return _build(recipe, classes, sources)


# ----------------------------------------------------------------------------- label mapping


def _check_label_map(
    recipe: Recipe,
    label_map: dict[str, str | None],
    annotations: Annotations | None,
    clips: tuple[pd.DataFrame, str] | None,
) -> None:
    """Every key of data.label_map must be a label some source uses (a typo maps nothing)."""
    if not label_map:
        return
    labels: set[str] = set()
    if annotations is not None:
        labels |= set(annotations.boxes["label"])
    for path in recipe.data.reviewed:
        labels |= _review_labels(Path(path))
    if clips is not None:
        labels |= set(clips[0]["label"])
    for old in label_map:
        if old not in labels:
            close = difflib.get_close_matches(old, sorted(labels), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise BioclassError(
                f"data.label_map: {old!r} is not a label of the annotations, reviews or clips "
                f"({', '.join(sorted(labels)) or 'none'}){hint}"
            )


def _mapped(label: str, label_map: dict[str, str | None]) -> str | None:
    """The label after data.label_map (None: dropped)."""
    if label in label_map:
        new = label_map[label]
        return None if new is None else new.strip()
    return label


# ----------------------------------------------------------------------------- sources


def _add_annotations(
    recipe: Recipe,
    annotations: Annotations,
    label_map: dict[str, str | None],
    sources: _Sources,
) -> None:
    """Annotated extents as stretches, boxes as boxes (grouped by a CSV `group` column)."""
    d = recipe.data
    present = set(annotations.boxes["label"])
    annotations = apply_label_mapping(
        annotations, {k: v for k, v in label_map.items() if k in present}
    )
    extent = annotated_extent(annotations, d.extent, d.audio_root)
    groups = _table_groups(annotations)
    for file in annotations.durations:
        sources.info(file)
    for row in extent.itertuples(index=False):
        sources.stretches.append(
            {
                "file": row.file,
                "start_time": float(row.start_time),
                "end_time": float(row.end_time),
                "kind": "annotated",
                "label": "",
                "group": groups.get(row.file, row.file),
                "split": None,
                "source": d.extent or "annotations",
                "negative": False,
            }
        )
    background = d.background_label
    for box in annotations.boxes.itertuples(index=False):
        where = f"{box.source}, row {box.row}"
        if box.label == background:  # boxed noise: a stretch with none of the classes
            sources.stretches.append(
                {
                    "file": box.file,
                    "start_time": float(box.start_time),
                    "end_time": float(box.end_time),
                    "kind": "annotated",
                    "label": box.label,
                    "group": groups.get(box.file, box.file),
                    "split": None,
                    "source": box.source,
                    "negative": True,
                }
            )
            continue
        sources.boxes.append(
            {
                "file": box.file,
                "start_time": float(box.start_time),
                "end_time": float(box.end_time),
                "label": box.label,
                "where": where,
            }
        )


def _table_groups(annotations: Annotations) -> dict[str, str]:
    """Recording -> the `group` a CSV table gives its boxes (a recording with two groups joins
    them later; boxes without a group leave their recording its own)."""
    groups: dict[str, str] = {}
    boxes = annotations.boxes
    for source, part in boxes.groupby("source", sort=False):
        path = Path(source)
        if path.suffix.lower() != ".csv" and detect_format(path) != "csv":
            continue
        records = csv_records(path)
        header_row, header = records[0]
        index = Columns(path, header_row, header).find("group")
        if index is None:
            continue
        cells = {row: c for row, c in records[1:]}
        for file, row in zip(part["file"], part["row"], strict=True):
            values = cells.get(int(row), [])
            group = values[index].strip() if index < len(values) else ""
            if group:
                groups.setdefault(file, group)
    return groups


def _review_labels(path: Path) -> set[str]:
    """The `label` column of a review table (what its verdicts may name besides the classes)."""
    records = csv_records(path) if path.is_file() else None
    if not records:
        return set()
    header_row, header = records[0]
    index = Columns(path, header_row, header).find("label")
    if index is None:
        return set()
    return {c[index].strip() for _, c in records[1:] if index < len(c) and c[index].strip()}


def _known_names(
    recipe: Recipe, sources: _Sources, clips: tuple[pd.DataFrame, str] | None
) -> set[str]:
    """Names a verdict may give: the recipe's classes, else every label of the annotations,
    the review tables and the clips; and the label map's names."""
    d = recipe.data
    names = set(d.label_map) | {v for v in d.label_map.values() if v}
    if d.classes is not None:
        return names | set(d.classes)
    names |= {b["label"] for b in sources.boxes}
    for path in d.reviewed:
        names |= _review_labels(Path(path))
    if clips is not None:
        names |= set(clips[0]["label"])
    return names


def _add_reviews(
    recipe: Recipe, known: set[str], label_map: dict[str, str | None], sources: _Sources
) -> None:
    """Reviewed detections: yes / another class -> a box over the detection; no -> a hard
    negative; no verdict -> skipped (counted). `known`: the names a verdict may give."""
    d = recipe.data
    unreviewed = 0
    for path in d.reviewed:
        table = read_review(path, classes=known, audio_root=d.audio_root)
        for row in table.itertuples(index=False):
            if row.verdict == "":
                unreviewed += 1
                continue
            info = _recording_info(sources, row.file, f"{path}, row {row.row}")
            end = min(float(row.end_time), info.duration_seconds)
            if float(row.start_time) >= end:
                raise BioclassError(
                    f"{path}, row {row.row}: the detection {row.start_time:g}-{row.end_time:g} s "
                    f"is outside {row.file} ({info.duration_seconds:g} s long)"
                )
            said = row.label if row.verdict == YES else None if row.verdict == NO else row.verdict
            label = None if said is None else _mapped(said, label_map)
            negative = label is None or label == d.background_label
            sources.stretches.append(
                {
                    "file": row.file,
                    "start_time": float(row.start_time),
                    "end_time": end,
                    "kind": "reviewed",
                    "label": f"{row.label}: {row.verdict}",
                    "group": row.file,
                    "split": None,
                    "source": str(path),
                    "negative": negative,
                }
            )
            if not negative:
                sources.boxes.append(
                    {
                        "file": row.file,
                        "start_time": float(row.start_time),
                        "end_time": end,
                        "label": label,
                        "where": f"{path}, row {row.row}",
                    }
                )
    if unreviewed:
        console.print(f"{unreviewed} reviewed detection(s) without a verdict skipped")


def _recording_info(sources: _Sources, file: str, where: str) -> AudioInfo:
    try:
        return sources.info(file)
    except AudioError as exc:
        raise BioclassError(f"{where}: {exc}") from None


def _add_clips(
    recipe: Recipe,
    clips: tuple[pd.DataFrame, str],
    label_map: dict[str, str | None],
    sources: _Sources,
) -> None:
    """Labelled clips: each a stretch and a box of its label over it (background clips: hard
    negatives); unreadable files skipped and reported as in clip training."""
    d = recipe.data
    table, source = clips
    readable, bad = probe_headers(table["file"])
    broken = table["file"].isin(set(bad["file"])).to_numpy()
    check_bad_fraction(bad, len(table), d.max_bad_fraction)
    sources.bad = join_bad(sources.bad, bad)
    sources.infos.update(readable)
    has_times = "start_time" in table.columns
    for i, row in enumerate(table.itertuples(index=False)):
        if broken[i]:
            continue
        info = readable[row.file]
        start = float(row.start_time) if has_times and pd.notna(row.start_time) else 0.0
        end = float(row.end_time) if has_times and pd.notna(row.end_time) else None
        end = info.duration_seconds if end is None else min(end, info.duration_seconds)
        if start >= end:
            raise LabelError(
                f"{source}, row {i + 2}: the clip {start:g}-{end:g} s is outside {row.file} "
                f"({info.duration_seconds:g} s long)"
            )
        label = _mapped(row.label, label_map)
        negative = label is None or label == d.background_label
        group = getattr(row, "group", None)
        split = getattr(row, "split", None)
        sources.stretches.append(
            {
                "file": row.file,
                "start_time": start,
                "end_time": end,
                "kind": "clip",
                "label": row.label,
                "group": row.file if group is None or pd.isna(group) else str(group),
                "split": None if split is None or pd.isna(split) else split,
                "source": source,
                "negative": negative,
            }
        )
        if not negative:
            sources.boxes.append(
                {
                    "file": row.file,
                    "start_time": start,
                    "end_time": end,
                    "label": label,
                    "where": f"{source}, row {i + 2}",
                }
            )


# ----------------------------------------------------------------------------- corpus


def _classes(recipe: Recipe, sources: _Sources) -> list[str]:
    """data.classes (every box label must be in it), else the box labels sorted, with the
    background label when a labelled clip carries it."""
    d = recipe.data
    labels = sorted({b["label"] for b in sources.boxes})
    if d.classes is not None:
        for box in sources.boxes:
            if box["label"] not in d.classes:
                close = difflib.get_close_matches(box["label"], d.classes, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise LabelError(
                    f"{box['where']}: label {box['label']!r} is not one of data.classes "
                    f"({', '.join(d.classes)}){hint}; add it, or map it with data.label_map"
                )
        empty = [c for c in d.classes if c not in labels and c != d.background_label]
        if empty:
            raise LabelError(
                f"class {empty[0]!r} (in data.classes) has no box in data.annotations, "
                "data.reviewed or the labelled clips"
            )
        return list(d.classes)
    if not labels:
        raise LabelError(
            "no boxes of any class in data.annotations / data.reviewed / the labelled clips: "
            "nothing to train on"
        )
    background = d.background_label
    clip_background = any(
        s["kind"] == "clip" and s["negative"] and s["label"] == background
        for s in sources.stretches
    )
    return sorted({*labels, background}) if clip_background else labels


def _build(recipe: Recipe, classes: list[str], sources: _Sources) -> WindowedData:
    d, spec = recipe.data, clip_spec(recipe)
    files = list(dict.fromkeys(s["file"] for s in sources.stretches))
    rec_of = {f: i for i, f in enumerate(files)}
    stretches = pd.DataFrame(sources.stretches)
    stretches["rec"] = stretches["file"].map(rec_of)
    cls_of = {c: i for i, c in enumerate(classes)}
    boxes = pd.DataFrame(
        sources.boxes, columns=["file", "start_time", "end_time", "label", "where"]
    )
    boxes["rec"] = boxes["file"].map(rec_of).astype(np.int64)
    boxes["cls"] = boxes["label"].map(cls_of).astype(np.int64)
    split = _split(recipe, stretches, boxes, files)
    stretches["split"] = stretches["rec"].map(split)
    stretches["group"] = stretches["rec"].map(
        merged_groups(stretches["rec"].to_numpy(), stretches["group"].astype(str).to_numpy())
    )
    test = stretches["split"] == "test"
    if test.any():
        console.print(
            f"{stretches.loc[test, 'rec'].nunique()} recording(s) of the labelled clips' test "
            "split left out, with everything else known about them"
        )
    background = cls_of.get(d.background_label)
    rule = OverlapRule(d.min_overlap_seconds, d.min_overlap_fraction)
    corpus = WindowCorpus.build(
        files,
        classes,
        spec.sample_rate,
        spec.n_samples,
        stretches.loc[~test & ~stretches["negative"], ["rec", "start_time", "end_time"]],
        stretches.loc[~test & stretches["negative"], ["rec", "start_time", "end_time"]],
        boxes[["rec", "start_time", "end_time", "cls"]],
        rule,
        background,
    )
    rec_split = np.array([split.get(i, "test") for i in range(len(files))])
    train_part = corpus.part(rec_split == "train")
    val_part = corpus.part(rec_split == "val")
    _check_parts(train_part, val_part, classes, background)
    reader = RecordingReader(
        files, [sources.infos[f] for f in files], spec.sample_rate, spec.channel
    )
    hop = max(1, int(round(recipe.train.pooling_hop * spec.n_samples)))
    val = FixedWindows(val_part, reader, spec, val_part.grid(hop))
    train = TrainingWindows(train_part, reader, spec, recipe.wave_augment)
    table = stretches[STRETCH_COLUMNS].sort_values(
        ["split", "file", "start_time"], kind="mergesort"
    )
    return WindowedData(classes, train, val, table.reset_index(drop=True), sources.bad)


def _split(
    recipe: Recipe, stretches: pd.DataFrame, boxes: pd.DataFrame, files: list[str]
) -> dict[int, str]:
    """Recording -> train / val / test, grouped and stratified (see `split_recordings`): one
    row per box, and one per stretch of a recording without boxes or with a fixed split."""
    group_of_rec = dict(zip(stretches["rec"], stretches["group"].astype(str), strict=True))
    boxed = stretches["rec"].isin(set(boxes["rec"]))
    plain = stretches[~boxed | stretches["split"].notna()]
    rows = pd.concat(
        [
            pd.DataFrame(
                {
                    "rec": plain["rec"].to_numpy(),
                    "group": plain["group"].astype(str).to_numpy(),
                    "split": plain["split"].to_numpy(dtype=object),
                    "label": NO_BOX,
                }
            ),
            pd.DataFrame(
                {
                    "rec": boxes["rec"].to_numpy(),
                    "group": boxes["rec"].map(group_of_rec).to_numpy(dtype=object),
                    "split": np.full(len(boxes), None, dtype=object),
                    "label": boxes["label"].to_numpy(dtype=object),
                }
            ),
        ],
        ignore_index=True,
    )
    rows["file"] = [files[r] for r in rows["rec"]]
    per_rec = split_recordings(rows, files, recipe.data.val_fraction, recipe.seed)
    return {int(r): s for r, s in per_rec.items()}


def _check_parts(
    train: WindowCorpus, val: WindowCorpus, classes: list[str], background: int | None
) -> None:
    """Every class has training boxes; validation has windows (a warning for a class with no
    validation box: its AP is not measured)."""
    have = set(train.boxes["cls"])
    for c, name in enumerate(classes):
        if c != background and c not in have:
            raise LabelError(
                f"class {name!r} has no box in the training recordings (all its recordings are in "
                "the validation or test split); annotate more recordings of it, or fix the split"
            )
    if not len(val.stretches):
        raise LabelError("the validation split is empty: no recording was held out")
    missing = [
        name for c, name in enumerate(classes) if c != background and c not in set(val.boxes["cls"])
    ]
    if missing:
        log.warning(
            "no validation boxes for class(es) %s: their AP is not measured", ", ".join(missing)
        )
