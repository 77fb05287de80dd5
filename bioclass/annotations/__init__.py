"""Annotation tables in: Raven Pro selection tables, Audacity label files and CSV tables of
boxes drawn on long recordings, read into one `Annotations` table (absolute audio paths, times
inside each file, labels, optional frequency band), with label mapping and annotated extents;
and the filled `review.csv` of `bioclass review` (`read_review`).

The reading layer that training and evaluation from annotations build on. Imports only the
audio and core floors."""

from bioclass.annotations.errors import (
    AnnotationAudioError,
    AnnotationError,
    AnnotationFormatError,
    AnnotationValueError,
    LabelMappingError,
)
from bioclass.annotations.extent import annotated_extent, read_extent, whole_recordings
from bioclass.annotations.mapping import apply_label_mapping
from bioclass.annotations.read import read_annotations
from bioclass.annotations.review import read_review
from bioclass.annotations.table import COLUMNS, Annotations

__all__ = [
    "COLUMNS",
    "AnnotationAudioError",
    "AnnotationError",
    "AnnotationFormatError",
    "AnnotationValueError",
    "Annotations",
    "LabelMappingError",
    "annotated_extent",
    "apply_label_mapping",
    "read_annotations",
    "read_extent",
    "read_review",
    "whole_recordings",
]
