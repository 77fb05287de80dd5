"""Knowledge distillation (`distill.teachers`): a student learns the scores of trained teachers.

The teachers' scores on a window say more than its label: how sure a call is, which classes it
resembles, that an unlabelled stretch of field audio holds nothing (Hinton et al. 2015). The
student is trained on the cross-entropy between its (temperature-softened) scores and the
teachers' mean scores, plus the labels' own loss, `distill.weight` between the two.

Every teacher scores exactly what the student sees: the same crop, the same MixUp partner and
weight, and the same SpecAugment stripes when its spectrogram has the student's shape (a
consistent teacher, as Beyer et al. 2022 found distillation needs); a teacher with another
spectrogram shape sees the window without SpecAugment, since stripes drawn for the student's
cells mean nothing on its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from bioclass.augment.spec import mixup, spec_augment
from bioclass.checkpoint import (
    CheckpointInfo,
    checkpoint_info,
    load_classifier,
    read_checkpoint,
)
from bioclass.core.activation import Activation
from bioclass.core.errors import BioclassError
from bioclass.inference.models import sha256_file
from bioclass.models import Classifier, known_model
from bioclass.recipe import Recipe, load_recipe, override_recipe, recipe_to_dict
from bioclass.recipe.schema import AugmentSection


def distill_recipe(
    teachers: list[Path], student: str, recipe: Path | None, overrides: tuple[str, ...] | list[str]
) -> Recipe:
    """The student's recipe (`bioclass distill`): `recipe`, or else the first teacher's own
    (its data, audio and training settings), with the student's architecture, no
    `model.init_from`, the teachers, then the user's overrides.

    Raises:
        BioclassError: no teacher, a missing or unreadable teacher, an unknown student.
    """
    if not teachers:
        raise BioclassError("give at least one TEACHER checkpoint")
    student = known_model(student)
    # Each teacher is read once: checked, and the first one kept for its recipe.
    first = [_classifier(Path(path)) for path in teachers][0]
    if recipe is not None:
        base, source = recipe_to_dict(load_recipe(recipe)), str(recipe)
    else:
        base, source = first["recipe"], f"{teachers[0]} (its recipe)"
    base = {
        **base,
        "model": {**base.get("model", {}), "name": student, "init_from": None},
        "distill": {
            **base.get("distill", {}),
            "teachers": [str(Path(t).resolve()) for t in teachers],
        },
    }
    return override_recipe(base, overrides, source=source)


@dataclass
class AugmentDraws:
    """The random state each batch augmentation started from, so teachers can replay it."""

    specaugment: np.random.Generator | None = None
    mixup: np.random.Generator | None = None


@dataclass
class Teacher:
    """One trained classifier, its outputs reordered to the student's classes."""

    path: Path
    model: Classifier
    activation: Activation
    order: torch.Tensor  # the teacher's output column of each student class
    sha256: str
    model_name: str

    def probabilities(self, spec: torch.Tensor, temperature: float) -> torch.Tensor:
        """(B, C) scores of the student's classes on (B, 1, frames, mels) log-mels."""
        logits = self.model.classify(spec).float()[:, self.order] / temperature
        if self.activation is Activation.SIGMOID:
            return torch.sigmoid(logits)
        return torch.softmax(logits, dim=1)


@dataclass
class Teachers:
    """The ensemble a student learns from: the mean of its members' scores."""

    members: list[Teacher] = field(default_factory=list)

    @classmethod
    def load(
        cls, paths: list[str], classes: list[str], sample_rate: int, dev: torch.device
    ) -> Teachers:
        """Load every teacher, checking it scores the student's classes at its sample rate.

        Raises:
            BioclassError: a teacher that is not a classifier checkpoint, listens at another
                rate, or knows other classes.
        """
        members = []
        for text in paths:
            path = Path(text)
            # Read once here; `check_teacher` vetted the file before the data was decoded.
            model, ckpt = load_classifier(path)
            info = checkpoint_info(ckpt, path)
            _check_rate(info, path, sample_rate)
            missing = [c for c in classes if c not in info.classes]
            extra = [c for c in info.classes if c not in classes]
            if missing or extra:
                said = "; ".join(
                    f"{what}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                    for what, names in (("it lacks", missing), ("it adds", extra))
                    if names
                )
                raise BioclassError(
                    f"distill.teachers: {path} scores other classes than the training data "
                    f"has ({said})"
                )
            model.to(dev).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            order = torch.tensor([info.classes.index(c) for c in classes], device=dev)
            members.append(
                Teacher(path, model, info.activation, order, sha256_file(path), info.model_name)
            )
        return cls(members)

    def provenance(self) -> list[dict[str, Any]]:
        """What the student checkpoint records about its teachers."""
        return [
            {"path": str(t.path.resolve()), "sha256": t.sha256, "model": t.model_name}
            for t in self.members
        ]

    def describe(self) -> str:
        names = ", ".join(f"{t.path.name} ({t.model_name})" for t in self.members)
        return f"{len(self.members)} teacher{'s' if len(self.members) > 1 else ''}: {names}"

    def scores(
        self,
        wave: torch.Tensor,
        cfg: AugmentSection,
        draws: AugmentDraws,
        student_shape: torch.Size,
        temperature: float,
    ) -> torch.Tensor:
        """The teachers' mean (B, C) scores on the student's batch, augmented as it was."""
        with torch.no_grad():
            total = None
            for teacher in self.members:
                spec = replay_augment(teacher.model.spectrogram(wave), cfg, draws, student_shape)
                p = teacher.probabilities(spec, temperature)
                total = p if total is None else total + p
            return total / len(self.members)


def check_teacher(path: Path, sample_rate: int) -> None:
    """A teacher must be a classifier checkpoint scoring audio at the student's sample rate
    (checked before the training data is decoded).

    Raises:
        BioclassError: what is wrong with it, naming the file.
    """
    _check_rate(checkpoint_info(_classifier(path), path), path, sample_rate)


def _check_rate(info: CheckpointInfo, path: Path, sample_rate: int) -> None:
    """A teacher scores audio at the student's sample rate, or is refused."""
    if info.sample_rate != sample_rate:
        raise BioclassError(
            f"distill.teachers: {path} scores audio at {info.sample_rate} Hz and the student "
            f"at {sample_rate} Hz: give the student audio.sample_rate {info.sample_rate}"
        )


def _classifier(path: Path) -> dict[str, Any]:
    """A teacher's checkpoint dict, refused unless it is a classifier's."""
    if not path.is_file():
        raise BioclassError(f"distill.teachers: {path}: no such checkpoint file")
    ckpt = read_checkpoint(path)
    if not ckpt.get("classes"):
        raise BioclassError(
            f"distill.teachers: {path} is an encoder without classes (from bioclass pretrain); "
            "a teacher must be a trained classifier"
        )
    return ckpt


def replay_augment(
    spec: torch.Tensor, cfg: AugmentSection, draws: AugmentDraws, student_shape: torch.Size
) -> torch.Tensor:
    """A teacher's log-mels augmented with the student's draws (copies of the generators, so
    every teacher replays the same ones)."""
    if cfg.specaugment and draws.specaugment is not None and spec.shape == student_shape:
        spec = spec_augment(spec, cfg, copy.deepcopy(draws.specaugment))
    if cfg.mixup_alpha > 0 and draws.mixup is not None:
        dummy = torch.zeros(spec.shape[0], 1, device=spec.device)
        spec, _ = mixup(spec, dummy, cfg.mixup_alpha, copy.deepcopy(draws.mixup))
    return spec


def labelled_share(
    y: torch.Tensor, cfg: AugmentSection, draws: AugmentDraws, n_rows: int
) -> torch.Tensor | None:
    """How much of each (mixed) row comes from labelled clips: 1 or 0 without MixUp, between
    the two where MixUp mixed a labelled with an unlabelled clip. None for multi-hot windows,
    which are all labelled."""
    if y.dim() == 2:
        return None
    labelled = (y >= 0).float().unsqueeze(1)  # (B, 1)
    if cfg.mixup_alpha <= 0 or draws.mixup is None:
        return labelled.squeeze(1)
    dummy = torch.zeros(n_rows, 1, 1, 1, device=y.device)
    union = cfg.mixup_targets == "union"
    _, mixed = mixup(dummy, labelled, cfg.mixup_alpha, copy.deepcopy(draws.mixup), union=union)
    return mixed.squeeze(1)


def soft_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, activation: Activation
) -> torch.Tensor:
    """(B,) loss of each row against soft targets: softmax cross-entropy, or the mean binary
    cross-entropy over classes for sigmoid scores."""
    if activation is Activation.SIGMOID:
        return F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
    return -(target * F.log_softmax(logits, dim=1)).sum(dim=1)


def labelled_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    target: torch.Tensor | None,
    share: torch.Tensor | None,
    activation: Activation,
) -> torch.Tensor:
    """The labels' loss on a batch that may hold unlabelled rows: each row's loss on the
    labelled part of its targets, weighted by that part's share (what the plain objective
    computes when every row is labelled)."""
    logits = logits.float()
    if target is None:
        if y.dim() == 2:
            target = y.float()
        else:
            labelled = (y >= 0).float()
            target = F.one_hot(y.clamp(min=0), logits.shape[1]).float() * labelled.unsqueeze(1)
    if share is None and y.dim() == 1:
        share = (y >= 0).float()
    if share is None:  # multi-hot windows: all labelled
        return soft_cross_entropy(logits, target, activation).mean()
    rows = share > 1e-6
    if not bool(rows.any()):
        return logits.sum() * 0.0
    w = share[rows]
    per_row = soft_cross_entropy(logits[rows], target[rows] / w.unsqueeze(1), activation)
    return (w * per_row).sum() / w.sum()


def distillation_loss(
    logits: torch.Tensor,
    teacher_scores: torch.Tensor,
    labels: torch.Tensor,
    weight: float,
    temperature: float,
    activation: Activation,
) -> torch.Tensor:
    """weight x T^2 x soft cross-entropy against the teachers + (1 - weight) x the labels' loss
    (`labels`, computed by `labelled_loss`). T^2 keeps the gradient of the soft term at the
    scale of the labels' as T grows (Hinton et al. 2015)."""
    soft = soft_cross_entropy(logits.float() / temperature, teacher_scores, activation).mean()
    return weight * temperature**2 * soft + (1 - weight) * labels
