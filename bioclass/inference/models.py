"""Checkpoints loaded for inference, alone or as an ensemble, and prepared to run fast.

`scan`, `embed` and `evaluate` load models the same way: the weights chosen for inference (EMA or
raw), the checkpoint's typed description, and for ensembles the check that every member agrees on
what the averaged scores mean.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from bioclass.checkpoint import CheckpointInfo, checkpoint_info, load_classifier, load_model
from bioclass.core.activation import ScoreMap
from bioclass.core.errors import BioclassError
from bioclass.models import Classifier
from bioclass.models.fusion import fuse_conv_bn

# Where convolutions run faster on channels-last tensors (measured ~1.3x for CNN10 on a CPU).
CHANNELS_LAST_DEVICES = ("cpu", "cuda")


@dataclass(frozen=True)
class LoadedModels:
    """Models loaded from checkpoints that agree on classes, rate, window and activation.

    Attributes:
        models: the inference models, in eval mode, in the order given: PyTorch classifiers, or
            exported files in another runtime (`exported.OnnxModel`; see `backends`).
        paths: their checkpoint (or exported) files.
        info: the first checkpoint's description (what the ensemble agrees on).
        infos: every checkpoint's description, in the order given (each has its own
            calibration).
    """

    models: list[Any]
    paths: list[Path]
    info: CheckpointInfo
    infos: tuple[CheckpointInfo, ...] = ()

    def score_maps(self, calibration: str | None = None) -> list[ScoreMap]:
        """How each model's logits become scores: its own calibration (`calibration`: on, off,
        or None for on where a checkpoint has one), then the activation they share."""
        return [info.score_map(calibration) for info in self.infos or (self.info,)]

    def calibrated(self, calibration: str | None = None) -> bool:
        """Whether any member's scores are calibrated with this choice."""
        return any(m.calibrated for m in self.score_maps(calibration))

    @cached_property
    def hashes(self) -> list[str]:
        """SHA-256 of each checkpoint file (read when asked: only a scan records them)."""
        return [sha256_file(p) for p in self.paths]


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file (identifies the exact model used)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def load_models(paths: list[Path], need_classes: bool = True) -> LoadedModels:
    """Load one checkpoint, or several for an ensemble whose scores are averaged.

    Args:
        paths: checkpoint files.
        need_classes: refuse encoders without classes (for commands that give class scores).

    Raises:
        BioclassError: no path, an unreadable checkpoint, or members that disagree on classes,
            sample rate, window length or score activation.
    """
    if not paths:
        raise BioclassError("give at least one --model checkpoint")
    paths = [Path(p) for p in paths]
    load = load_classifier if need_classes else load_model
    models, infos = [], []
    for p in paths:
        model, ckpt = load(p)
        models.append(model)
        infos.append(checkpoint_info(ckpt, p))
    return ensemble(models, paths, infos)


def ensemble(models: list[Any], paths: list[Path], infos: list[CheckpointInfo]) -> LoadedModels:
    """Loaded models as one ensemble, once they agree on what their averaged scores mean.

    Raises:
        BioclassError: members that disagree on classes, sample rate, window or activation.
    """
    first = infos[0]
    for p, info in zip(paths[1:], infos[1:], strict=True):
        _check_agrees(p, info, paths[0], first)
    return LoadedModels(models=models, paths=paths, info=first, infos=tuple(infos))


def _check_agrees(
    path: Path, info: CheckpointInfo, first_path: Path, first: CheckpointInfo
) -> None:
    # Averaging scores is only meaningful for the same outputs on the same windows.
    if info.classes != first.classes:
        raise BioclassError(
            f"{path}: classes {list(info.classes)} differ from {first_path}'s "
            f"{list(first.classes)}; an ensemble needs the same classes in the same order"
        )
    if info.sample_rate != first.sample_rate or info.window_seconds != first.window_seconds:
        raise BioclassError(f"{path}: sample rate or window length differs from {first_path}")
    if info.activation is not first.activation:
        raise BioclassError(
            f"{path}: trained with {info.activation.value} scores, "
            f"{first_path} with {first.activation.value}"
        )


def prepare_for_inference(model: Classifier, device: torch.device) -> Classifier:
    """Eval mode, BatchNorms folded into convolutions, channels-last, on `device` (in place)."""
    model.eval()
    fuse_conv_bn(model)
    model.to(device)
    if device.type in CHANNELS_LAST_DEVICES:
        model.to(memory_format=torch.channels_last)
    return model
