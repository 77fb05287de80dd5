"""The losses of `bioclass train`'s objectives (`loss.name`), with the heads they need.

What each objective is (activation, views, unlabelled clips, hard labels) is declared in
`bioclass.recipe.objectives`; this module computes its loss. The embedding h is the model's
penultimate layer (fc1 after ReLU); the classifier is fc on h.

With several ranks (torchrun) the contrastive terms (SupCon, angular margin, CLAR's NT-Xent)
are computed over the global batch: every rank's embeddings are gathered, with gradients
flowing back, so N ranks of batch b contrast as one process of batch N*b does; cross-entropy
is each rank's own mean, which DDP's gradient average makes the global mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bioclass.core.activation import Activation
from bioclass.losses import angular_margin_supervised, nt_xent, supcon
from bioclass.models import Classifier, ProjectionHead
from bioclass.recipe.objectives import ObjectiveSpec, resolve_objective
from bioclass.recipe.schema import LossSection, Recipe
from bioclass.runtime.distributed import all_gather


@dataclass
class Objective:
    """A recipe's loss, its training-only projection head, and when the encoder is frozen.

    Attributes:
        spec: what the objective is (activation, views, ...).
        cfg: the recipe's loss section.
        head: projection head (contrastive losses), trained with the model, not saved in it.
        freeze_from: first iteration (1-based) at which the encoder is frozen; 0 = from the
            start (model.freeze_encoder), None = never.
    """

    spec: ObjectiveSpec
    cfg: LossSection
    head: nn.Module | None
    freeze_from: int | None

    @classmethod
    def build(cls, recipe: Recipe, model: Classifier, n_iterations: int) -> Objective:
        spec = resolve_objective(recipe)
        cfg = recipe.loss
        head = None
        if spec.projection == "linear":  # as SoundCLR
            head = ProjectionHead(model.embed_dim, cfg.projection_dim)
        elif spec.projection == "mlp":
            head = ProjectionHead(model.embed_dim, cfg.projection_dim, model.embed_dim)
        freeze_from = None
        if recipe.model.freeze_encoder:
            freeze_from = 0
        elif spec.staged:  # the first stage takes loss.supcon_fraction of the iterations
            freeze_from = max(1, int(round(cfg.supcon_fraction * n_iterations))) + 1
        return cls(spec, cfg, head, freeze_from)

    @property
    def name(self) -> str:
        """The resolved loss name (never `auto`)."""
        return self.spec.name

    def frozen(self, iteration: int) -> bool:
        """Whether the encoder is frozen at (1-based) `iteration`."""
        return self.freeze_from is not None and iteration >= self.freeze_from

    def validates(self, iteration: int) -> bool:
        """Whether the classifier means anything yet (not during the SupCon-only stage)."""
        return not self.spec.staged or self.frozen(iteration)

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
        if self.spec.staged:  # first stage: the contrastive term alone
            h = model.embed_spec(spec)  # (N, 1, F, M) -> (N, D)
            z = self.head(F.normalize(h, dim=1))
            return supcon(all_gather(z), all_gather(y), cfg.temperature)
        auxiliary = _AUXILIARY.get(self.name)
        if auxiliary is None:  # plain classification
            return self._classification(model.classify(spec), y, soft_target)
        h, logits = model.embed_and_classify(spec)  # (N, D), (N, C)
        ce = self._classification(logits, y, None)
        return cfg.alpha * auxiliary(self, h, y) + (1 - cfg.alpha) * ce

    def _classification(
        self, logits: torch.Tensor, y: torch.Tensor, soft_target: torch.Tensor | None
    ) -> torch.Tensor:
        """Cross-entropy (or BCE) on the labelled rows; MixUp's soft targets when given."""
        logits = logits.float()
        if soft_target is not None:
            if self.spec.activation is Activation.SIGMOID:
                return F.binary_cross_entropy_with_logits(logits, soft_target)
            return -(soft_target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
        labelled = y >= 0
        if not bool(labelled.any()):
            return logits.sum() * 0.0  # a batch of unlabelled clips: no supervised signal
        logits, y = logits[labelled], y[labelled]
        if self.spec.activation is Activation.SIGMOID:
            return F.binary_cross_entropy_with_logits(logits, F.one_hot(y, logits.shape[1]).float())
        return F.cross_entropy(logits, y)


def _supcon_term(objective: Objective, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SoundCLR: SupCon on a linear projection of the normalised embedding."""
    z = objective.head(F.normalize(h, dim=1))
    return supcon(all_gather(z), all_gather(y), objective.cfg.temperature)


def _angular_term(objective: Objective, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Supervised ACL: angular margin on the embedding."""
    return angular_margin_supervised(all_gather(h), all_gather(y), objective.cfg.margin)


def _clar_term(objective: Objective, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CLAR: NT-Xent between the two views (rows [0, B) and [B, 2B)); labels are not used."""
    z = objective.head(h)
    n = z.shape[0] // 2
    return nt_xent(all_gather(z[:n]), all_gather(z[n:]), objective.cfg.temperature)


# The term an objective adds to cross-entropy (weighted by loss.alpha); objectives not listed
# are plain classification.
_AUXILIARY = {
    "supcon_hybrid": _supcon_term,
    "ce_angular": _angular_term,
    "clar": _clar_term,
}
