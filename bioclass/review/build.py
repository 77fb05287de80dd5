"""`bioclass review`: from a detections CSV to a folder of clips to listen to, a Raven table
that plays them in order and `review.csv` for the verdicts; optionally the verdicts themselves,
from annotation tables.

The first half of the hard-negative loop: a person (or an annotation table) says which
detections were right; the detections judged `no` or another class are the model's hard
negatives, for the training step that reads `review.csv` back (`read_review`).
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.annotations import AnnotationAudioError, read_annotations
from bioclass.annotations.errors import where
from bioclass.annotations.locate import AudioLookup
from bioclass.audio import AudioError
from bioclass.audio.io import AudioInfo
from bioclass.core.atomic import atomic_write_text, check_output_folder
from bioclass.core.errors import BioclassError
from bioclass.review.clips import CLIP_FORMATS, class_folders, clip_name, cut_clip
from bioclass.review.detections import read_detections
from bioclass.review.select import STRATEGIES, check_labels, select_detections
from bioclass.review.table import REVIEW_COLUMNS, raven_table_text, review_csv_text
from bioclass.review.verdicts import fill_verdicts, mixed_rows

REVIEW_CSV = "review.csv"
RAVEN_TABLE = "review.selections.txt"
FAILED_CSV = "failed.csv"
# The review's rows while it is made: review.csv's columns, and what the Raven table needs.
REVIEW_FRAME = [
    *REVIEW_COLUMNS,
    "channel",
    "rank",
    "clip_path",
    "clip_start",
    "clip_seconds",
    "sample_rate",
]


@dataclass(frozen=True)
class ReviewOptions:
    """What `bioclass review` takes besides the detections CSV (its options, by name)."""

    out: Path
    strategy: str = "stratified"
    per_class: int = 20
    bins: int = 5
    seed: int = 0
    pad: float = 1.0
    labels: tuple[str, ...] | None = None
    audio_root: Path | None = None
    clip_format: str = "flac"
    verdicts_from: tuple[Path, ...] = ()
    force: bool = False

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise BioclassError(f"strategy must be one of {', '.join(STRATEGIES)}")
        if self.clip_format not in CLIP_FORMATS:
            raise BioclassError(f"clip format must be one of {', '.join(CLIP_FORMATS)}")
        if self.per_class < 1 or self.bins < 1 or self.seed < 0 or self.pad < 0:
            raise BioclassError("per_class and bins must be >= 1, seed and pad >= 0")


@dataclass
class ReviewSummary:
    """What a review run did."""

    n_detections: int = 0
    per_class: dict[str, int] = field(default_factory=dict)  # clips cut per class
    failed: list[tuple[str, str]] = field(default_factory=list)  # (recording, why)
    n_skipped: int = 0  # detections lost to those failures
    verdicts: dict[str, int] = field(default_factory=dict)  # filled verdicts by value
    uncovered: list[str] = field(default_factory=list)  # recordings no annotation table covers
    n_mixed: int = 0  # clips judged over boxes of several classes (one verdict each)
    n_removed: int = 0  # clips of the previous review in the folder that this one dropped
    nonfinite: list[tuple[str, int]] = field(default_factory=list)  # (clip, NaN/Inf samples)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def n_clips(self) -> int:
        return sum(self.per_class.values())


def make_review(
    detections_csv: str | Path,
    options: ReviewOptions,
    on_clip: Callable[[int, int], None] | None = None,
) -> ReviewSummary:
    """Select detections, cut their clips into `options.out` and write the review tables.

    Args:
        detections_csv: a detections CSV of `bioclass scan`.
        options: see `ReviewOptions` and the README.
        on_clip: called as (clips done, clips to cut) for progress.

    Raises:
        BioclassError: one line for bad input (the CSV, the labels, the annotation tables), an
            output folder that cannot be written, or a review.csv with verdicts in the way.
    """
    detections_csv = Path(detections_csv)
    out = options.out
    detections, with_channel = read_detections(detections_csv)
    previous = _check_previous(out / REVIEW_CSV, options.force)
    # Read before anything is written: a bad table stops the run with the folder untouched.
    annotations = (
        read_annotations(list(options.verdicts_from), audio_root=options.audio_root)
        if options.verdicts_from
        else None
    )
    _prepare_folder(out)
    summary = ReviewSummary(n_detections=len(detections))
    if options.labels is not None and len(detections):  # nothing detected: an empty review
        check_labels(detections, options.labels)
        detections = detections[detections["label"].isin(options.labels)]
    usable, summary.failed, summary.n_skipped = _usable(
        detections, detections_csv, options.audio_root
    )
    picked = select_detections(
        usable, options.strategy, options.per_class, options.bins, options.seed
    )
    review = _cut_all(picked, out, options, summary, on_clip)
    if annotations is not None and len(review):
        review, summary.uncovered = fill_verdicts(review, annotations)
        summary.n_mixed = len(mixed_rows(review, annotations))
        summary.verdicts = review["verdict"][review["verdict"] != ""].value_counts().to_dict()
    paths = {
        "review": out / REVIEW_CSV,
        "raven": out / RAVEN_TABLE,
        "failed": out / FAILED_CSV,
        "folder": out,
    }
    if len(review):
        atomic_write_text(paths["raven"], raven_table_text(review))
    else:
        # A Raven table without selections reads as the table of one recording beside it
        # (Raven's own convention), which does not exist: no clips, no table. One left by an
        # earlier review in the folder would point at clips that are gone.
        paths["raven"].unlink(missing_ok=True)
        del paths["raven"]
    atomic_write_text(paths["failed"], _failed_csv(summary.failed))
    # review.csv last: a run that stops before it leaves the previous review.csv as it was.
    atomic_write_text(paths["review"], review_csv_text(review, with_channel))
    summary.n_removed = _remove_dropped(previous, review, out)
    summary.outputs = {name: str(p) for name, p in paths.items()}
    return summary


def _check_previous(path: Path, force: bool) -> list[str]:
    """The clips a review.csv already in the folder lists; refuses when it holds verdicts."""
    if not path.exists():
        return []
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    except (OSError, UnicodeDecodeError, csv.Error):
        rows = None
    if force:
        return [] if rows is None else [r.get("clip") or "" for r in rows]
    if rows is None:
        raise BioclassError(
            f"{path} exists and cannot be read, so it may hold verdicts; give another --out, "
            "or --force to replace it"
        )
    n = sum(1 for r in rows if (r.get("verdict") or "").strip())
    if n:
        raise BioclassError(
            f"{path} already holds {n} verdict(s); re-running would overwrite them: give another "
            "--out, or --force to replace them"
        )
    return [r.get("clip") or "" for r in rows]


def _prepare_folder(out: Path) -> None:
    # The clips go to class folders below: a killed review's temporary files may be there.
    check_output_folder(out, "the review folder", recursive=True)


def _usable(
    detections: pd.DataFrame, csv_path: Path, audio_root: Path | None
) -> tuple[pd.DataFrame, list[tuple[str, str]], int]:
    """The detections whose recording is found and readable, with `file` made absolute; the
    problems, as (recording as written, why); and how many detections were left out.

    Checked before the selection, so that a broken recording does not take a pick another
    detection of the class could have had.
    """
    lookup = AudioLookup(audio_root)
    found: dict[str, tuple[str, AudioInfo] | None] = {}
    failed: list[tuple[str, str]] = []
    keep, files = [], []
    for row in detections.itertuples(index=False):
        if row.file not in found:
            try:
                path = lookup.named(row.file, csv_path, row.row)
                found[row.file] = (path, lookup.info(path, csv_path, row.row))
            except AnnotationAudioError as exc:  # missing, empty or undecodable: listed once
                found[row.file] = None
                failed.append((row.file, str(exc)))
        entry = found[row.file]
        problem = None
        if entry is not None:
            path, info = entry
            if row.start_time >= info.duration_seconds:
                problem = (
                    f"{where(csv_path, row.row)}: the detection at {row.start_time:g} s starts "
                    f"after the end of {path} ({info.duration_seconds:g} s); is it the right file?"
                )
            elif not pd.isna(row.channel) and int(row.channel) >= info.n_channels:
                problem = (
                    f"{where(csv_path, row.row)}: channel {int(row.channel)}, but {path} has "
                    f"{info.n_channels} channel(s)"
                )
            if problem is not None:
                failed.append((row.file, problem))
        keep.append(entry is not None and problem is None)
        files.append(entry[0] if entry is not None else row.file)
    usable = detections.assign(file=pd.Series(files, index=detections.index, dtype=object))
    usable = usable.loc[np.array(keep, dtype=bool)].reset_index(drop=True)
    return usable, failed, len(detections) - len(usable)


def _cut_all(
    picked: pd.DataFrame,
    out: Path,
    options: ReviewOptions,
    summary: ReviewSummary,
    on_clip: Callable[[int, int], None] | None,
) -> pd.DataFrame:
    """Cut the picked detections' clips; the review rows of the clips that were written."""
    folders = class_folders(picked["label"].unique())
    width = max(4, len(str(options.per_class)))  # ranks sort as text too
    rows = []
    for i, row in enumerate(picked.itertuples(index=False), start=1):
        channel = None if pd.isna(row.channel) else int(row.channel)
        name = clip_name(row.rank, width, row.file, row.start_time, channel, options.clip_format)
        relative = Path(folders[row.label]) / name
        try:
            clip = cut_clip(
                row.file,
                out / relative,
                row.start_time,
                row.end_time,
                options.pad,
                channel,
                options.clip_format,
            )
        except AudioError as exc:  # decoding failed past the header: skip, report
            summary.failed.append((row.file, str(exc)))
            summary.n_skipped += 1
            continue
        finally:
            if on_clip is not None:
                on_clip(i, len(picked))
        summary.per_class[row.label] = summary.per_class.get(row.label, 0) + 1
        if clip.n_nonfinite:
            summary.nonfinite.append((relative.as_posix(), clip.n_nonfinite))
        rows.append(
            {
                "file": row.file,
                "start_time": row.start_time,
                "end_time": row.end_time,
                "label": row.label,
                "score": row.score,
                "channel": channel,
                "clip": relative.as_posix(),
                "verdict": "",
                "rank": row.rank,
                "clip_path": str(clip.path.resolve()),
                "clip_start": clip.start_seconds,
                "clip_seconds": clip.seconds,
                "sample_rate": clip.sample_rate,
            }
        )
    review = pd.DataFrame(rows, columns=REVIEW_FRAME)
    review["channel"] = pd.array(review["channel"], dtype="Int64")
    return review


def _failed_csv(failed: list[tuple[str, str]]) -> str:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["file", "error"])
    writer.writerows(failed)
    return text.getvalue()


def _remove_dropped(previous: list[str], review: pd.DataFrame, out: Path) -> int:
    """Delete the clips the previous review.csv listed and this one does not (bioclass cut
    them; left behind, they would sit among the new clips without a row), and class folders
    left empty. Only clip files inside the review folder are touched."""
    root = out.resolve()
    current = set(review["clip"])
    removed = 0
    for name in previous:
        if not name or name in current:
            continue
        path = (out / name).resolve()
        if path.suffix.lower().lstrip(".") not in CLIP_FORMATS or not path.is_relative_to(root):
            continue
        if path.is_file():
            path.unlink()
            removed += 1
            with contextlib.suppress(OSError):  # not empty: other clips or the user's files
                path.parent.rmdir()
    return removed
