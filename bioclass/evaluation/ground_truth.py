"""Annotation tables as the ground truth of an evaluation: boxes (labels mapped) and the
stretches of recordings that were annotated."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bioclass.annotations import annotated_extent, apply_label_mapping, read_annotations


@dataclass(frozen=True)
class GroundTruth:
    """What the annotators said.

    Attributes:
        boxes: one row per box (`bioclass.annotations.COLUMNS`: file, start_time, end_time,
            label, ..., source, row).
        extent: the annotated stretches (file, start_time, end_time), merged per recording; a
            recording listed here with no box was annotated and holds nothing.
        tables: the tables as given, for the report.
    """

    boxes: pd.DataFrame
    extent: pd.DataFrame
    tables: list[str]

    @property
    def recordings(self) -> list[str]:
        """The annotated recordings, in the order the tables (or the extent) list them."""
        return list(dict.fromkeys(self.extent["file"]))

    def annotated_seconds(self) -> float:
        return float((self.extent["end_time"] - self.extent["start_time"]).sum())


def load_ground_truth(
    tables: Sequence[str | Path],
    audio_root: str | Path | None = None,
    label_column: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    extent: str | Path | None = None,
) -> GroundTruth:
    """Read annotation tables (files or folders), map labels, and find the annotated extent.

    Raises:
        AnnotationError: one line naming the table and row (see `bioclass.annotations`).
    """
    annotations = read_annotations(list(tables), audio_root=audio_root, label_column=label_column)
    if mapping:
        annotations = apply_label_mapping(annotations, mapping)
    stretches = annotated_extent(annotations, extent, audio_root)
    return GroundTruth(annotations.boxes, stretches, [str(t) for t in tables])
