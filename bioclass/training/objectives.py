"""Training objectives of `bioclass train` (`loss.name`), with the heads they need.

    ce / bce          Pellegrini (2021): categorical cross-entropy, or binary cross-entropy
                      (the recipe's `auto` picks bce when MixUp is on, as the paper)
    supcon_hybrid     SoundCLR (Nasiri & Hu 2021): alpha * SupCon on a linear 64-d projection of
                      the normalised embedding + (1 - alpha) * cross-entropy, in one stage
    supcon_two_stage  SupCon alone for `supcon_fraction` of the iterations, then the encoder is
                      frozen and only the last layer is trained with cross-entropy
    ce_angular        alpha * angular margin loss on the embedding + (1 - alpha) * cross-entropy
                      (supervised ACL, Wang et al. 2022)
    clar              CLAR (Al-Tahan & Mohsenzadeh 2021): alpha * NT-Xent between two augmented
                      views + (1 - alpha) * cross-entropy on the labelled clips, so unlabelled
                      clips take part in the same run

The embedding h is the model's penultimate layer (fc1 after ReLU); the classifier is fc on h.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioclass.losses import angular_margin_supervised, nt_xent, supcon
from bioclass.models import Classifier, ProjectionHead
from bioclass.recipe.schema import LossSection, Recipe

CONTRASTIVE = ("supcon_hybrid", "supcon_two_stage", "clar")


def resolve_loss(recipe: Recipe) -> str:
    """The concrete loss: `auto` is bce with MixUp, else ce."""
    name = recipe.loss.name
    if name == "auto":
        return "bce" if recipe.augment.mixup_alpha > 0 else "ce"
    return name


def score_activation(loss: str) -> str:
    """How scores are made from logits for a model trained with `loss`."""
    return "sigmoid" if loss == "bce" else "softmax"


@dataclass
class Objective:
    """A recipe's loss, its training-only projection head, and when the encoder is frozen.

    Attributes:
        name: the resolved loss name.
        cfg: the recipe's loss section.
        head: projection head (contrastive losses), trained with the model, not saved in it.
        freeze_from: first iteration (1-based) at which the encoder is frozen; 0 = from the
            start (model.freeze_encoder), None = never.
    """

    name: str
    cfg: LossSection
    head: nn.Module | None
    freeze_from: int | None

    @classmethod
    def build(cls, recipe: Recipe, model: Classifier, n_iterations: int) -> Objective:
        name = resolve_loss(recipe)
        cfg = recipe.loss
        head = None
        if name in ("supcon_hybrid", "supcon_two_stage"):
            head = ProjectionHead(model.embed_dim, cfg.projection_dim)  # linear, as SoundCLR
        elif name == "clar":
            head = ProjectionHead(model.embed_dim, cfg.projection_dim, model.embed_dim)
        freeze_from = None
        if recipe.model.freeze_encoder:
            freeze_from = 0
        elif name == "supcon_two_stage":
            freeze_from = max(1, int(round(cfg.supcon_fraction * n_iterations))) + 1
        return cls(name, cfg, head, freeze_from)

    def frozen(self, iteration: int) -> bool:
        """Whether the encoder is frozen at (1-based) `iteration`."""
        return self.freeze_from is not None and iteration >= self.freeze_from

    def validates(self, iteration: int) -> bool:
        """Whether the classifier means anything yet (not during the SupCon-only stage)."""
        return self.name != "supcon_two_stage" or self.frozen(iteration)

    def parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the head (optimised with the model's)."""
        return [] if self.head is None else list(self.head.parameters())

    def set_mode(self, model: Classifier, iteration: int) -> None:
        """Training mode, with the encoder fixed (eval mode, no gradients) once frozen."""
        model.train()
        if self.head is not None:
            self.head.train()
        frozen = self.frozen(iteration)
        for module in (model.frontend, model.trunk, model.fc1):
            module.train(not frozen)
            for p in module.parameters():
                p.requires_grad_(not frozen)

    def loss(
        self,
        model: Classifier,
        spec: torch.Tensor,
        y: torch.Tensor,
        soft_target: torch.Tensor | None,
        iteration: int,
    ) -> torch.Tensor:
        """The batch loss.

        Args:
            model: the classifier being trained.
            spec: (N, 1, frames, mels) augmented log-mels; for clar N = 2B, the first B rows
                are view 1 and the last B view 2 of the same clips.
            y: (N,) class indices, -1 for unlabelled clips.
            soft_target: (N, C) MixUp targets, or None.
            iteration: 1-based optimiser step.
        """
        cfg = self.cfg
        if self.frozen(iteration):
            with torch.no_grad():  # the encoder is fixed: h is a constant input to fc
                h = torch.relu(model.fc1(model.pool(model.features(spec))))
            return self._classification(model.fc(model.dropout(h)), y, soft_target)
        if self.name in ("ce", "bce"):
            return self._classification(model.classify(spec), y, soft_target)
        if self.name == "supcon_two_stage":
            h = model.embed_spec(spec)  # (N, 1, F, M) -> (N, D)
            return supcon(self.head(F.normalize(h, dim=1)), y, cfg.temperature)
        h, logits = model.embed_and_classify(spec)  # (N, D), (N, C)
        ce = self._classification(logits, y, None)
        if self.name == "supcon_hybrid":
            aux = supcon(self.head(F.normalize(h, dim=1)), y, cfg.temperature)
        elif self.name == "ce_angular":
            aux = angular_margin_supervised(h, y, cfg.margin)
        else:  # clar
            z = self.head(h)
            n = z.shape[0] // 2
            aux = nt_xent(z[:n], z[n:], cfg.temperature)
        return cfg.alpha * aux + (1 - cfg.alpha) * ce

    def _classification(
        self, logits: torch.Tensor, y: torch.Tensor, soft_target: torch.Tensor | None
    ) -> torch.Tensor:
        """Cross-entropy (or BCE) on the labelled rows; MixUp's soft targets when given."""
        logits = logits.float()
        if soft_target is not None:
            if self.name == "bce":
                return F.binary_cross_entropy_with_logits(logits, soft_target)
            return -(soft_target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        labelled = y >= 0
        if not bool(labelled.any()):
            return logits.sum() * 0.0  # a batch of unlabelled clips: no supervised signal
        logits, y = logits[labelled], y[labelled]
        if self.name == "bce":
            return F.binary_cross_entropy_with_logits(
                logits, F.one_hot(y, logits.shape[1]).float())
        return F.cross_entropy(logits, y)
