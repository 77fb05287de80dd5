"""`bioclass evaluate`: score a model on labelled clips with the numbers `train` reports."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from bioclass.data.clips import ClipDataset, ClipSpec, decode_all
from bioclass.data.labels import (
    SPLIT_ALIASES,
    LabelError,
    check_known_labels,
    labels_from_csv,
    labels_from_folders,
)
from bioclass.evaluation.metrics import classification_metrics
from bioclass.inference.clips import ClipPooling, predict_clips
from bioclass.inference.models import load_models
from bioclass.runtime.device import pick_device

log = logging.getLogger(__name__)


def read_eval_table(data: str | Path, split: str | None = None) -> pd.DataFrame:
    """Labelled clips to evaluate on: a folder per class, or a CSV (optionally one split of it)."""
    data = Path(data)
    wanted = None if split is None else SPLIT_ALIASES.get(split.strip().lower(), split)
    if data.is_dir():
        if split is not None:
            raise LabelError(f"{data}: --split {split} given but a folder of classes has no splits")
        return labels_from_folders(data)
    if data.suffix.lower() in (".csv", ".tsv", ".txt") or data.is_file():
        # Only the split's rows are read: others may be a run's unlabelled windows.
        return labels_from_csv(data, split=wanted)
    raise LabelError(f"evaluation data not found: {data}")


def evaluate_model(
    model_path: str | Path,
    data: str | Path,
    split: str | None = None,
    batch_size: int = 64,
    device: str = "auto",
    pooling: str | None = None,
    calibration: str | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """Metrics of a checkpoint on labelled clips.

    Clips are prepared and scored exactly as in training's validation (the checkpoint's sample
    rate, clip length and channel choice; a short clip zero-padded, a long one scored window by
    window and pooled as the checkpoint's recipe says, unless `pooling` names another method).
    Window scores are calibrated as a scan's are (`calibration`: on, off, or None for on when
    the checkpoint has a calibration), so evaluate and scan give the same window scores.

    Returns:
        (metrics, per-clip predictions table, unreadable files table)
    """
    loaded = load_models([Path(model_path)])
    model, info = loaded.models[0], loaded.info
    classes = list(info.classes)
    table = read_eval_table(data, split)
    check_known_labels(table, classes, str(data))
    # The model's own clip length and channel choice, as its training validated it.
    spec = ClipSpec(info.sample_rate, info.window_seconds, info.channel)
    waves, table, bad = decode_all(table, spec, max_bad_fraction=0.999)
    if table.empty:
        raise LabelError(f"{data}: none of the clips could be read")
    dev = pick_device(device)
    model.to(dev)
    dataset = ClipDataset(table, classes, spec, waves)
    clip_pooling = ClipPooling(pooling or info.pooling, info.pooling_hop)
    score_map = loaded.score_maps(calibration)[0]
    scores, targets = predict_clips(
        model, dataset, score_map, batch_size, dev, pooling=clip_pooling
    )
    metrics = classification_metrics(scores, targets, classes)
    metrics["model"] = str(model_path)
    metrics["weights"] = "ema" if info.use_ema else "raw"
    metrics["pooling"] = clip_pooling.method
    metrics["calibrated"] = score_map.calibrated
    predictions = table[["file", "label"]].copy()
    predictions["predicted"] = [classes[i] for i in scores.argmax(axis=1)]
    for c, name in enumerate(classes):
        predictions[f"score_{name}"] = scores[:, c]
    return metrics, predictions, bad
