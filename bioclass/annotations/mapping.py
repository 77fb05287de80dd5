"""Label mapping: rename, merge or drop classes before the boxes are used."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from bioclass.annotations.errors import LabelMappingError
from bioclass.annotations.table import Annotations


def apply_label_mapping(annotations: Annotations, mapping: Mapping[str, str | None]) -> Annotations:
    """Relabel boxes: {old: new} renames (several olds to one new merge), {old: None} drops the
    old class's boxes; labels not in the mapping are kept.

    Dropped boxes leave their recordings annotated: the other classes still take those
    stretches as negatives (the annotators looked and found none of them there).

    Raises:
        LabelMappingError: a key is not a label of the annotations (a typo would silently map
            nothing), or a new name is empty.
    """
    labels = set(annotations.boxes["label"])
    for old, new in mapping.items():
        if old not in labels:
            close = difflib.get_close_matches(old, sorted(labels), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise LabelMappingError(
                f"label mapping: {old!r} is not a label of the annotations "
                f"({', '.join(sorted(labels)) or 'none'}){hint}"
            )
        if new is not None and (not isinstance(new, str) or not new.strip()):
            raise LabelMappingError(
                f"label mapping: {old!r} maps to {new!r}; give a class name, "
                "or None (null in YAML) to drop it"
            )
    boxes = annotations.boxes.copy()
    new_labels = [
        mapping[label].strip() if mapping.get(label) is not None else label
        for label in boxes["label"]
    ]
    keep = [not (label in mapping and mapping[label] is None) for label in boxes["label"]]
    boxes["label"] = pd.Series(new_labels, index=boxes.index, dtype=object)
    boxes = boxes[keep].reset_index(drop=True)
    return replace(annotations, boxes=boxes)
