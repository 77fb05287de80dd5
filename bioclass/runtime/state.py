"""What an unfinished run needs to continue exactly where it stopped, written and read in one
place for `train` and `pretrain` alike.

The state travels inside `last.pt` beside the model's weights, as plain data (checkpoints load
with `weights_only=True`); its keys are those of checkpoint format 1, so runs interrupted by an
earlier bioclass resume too. `pending_losses` came later: a `last.pt` without it resumes with
none (as every run did before it was saved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

STATE_KEYS = (
    "iteration",
    "history",
    "best",
    "optimizer",
    "torch_rng",
    "head_weights",
    "pending_losses",
)


@dataclass
class TrainingState:
    """Progress of a run.

    Attributes:
        iteration: optimiser steps done (the next step is iteration + 1, 1-based).
        history: one dict per evaluation row (what metrics.csv holds).
        best: the best evaluation so far (iteration, weights, metric, value, metrics), where the
            run selects a best model.
        optimizer: the optimiser's state dict at `iteration`.
        torch_rng: the global torch RNG state (dropout's draws) at `iteration`.
        head_weights: a training-only head (projection head of a contrastive loss), if any.
        pending_losses: the losses of the steps since the last evaluation, whose mean the next
            evaluation reports as `train_loss` (saved, so a resumed run reports what an
            uninterrupted one does).
    """

    iteration: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None
    optimizer: dict[str, Any] | None = None
    torch_rng: torch.Tensor | None = None
    head_weights: dict[str, torch.Tensor] | None = None
    pending_losses: list[float] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> TrainingState:
        """The state saved in a `last.pt` checkpoint."""
        return cls(
            iteration=int(ckpt["iteration"]),
            history=list(ckpt["history"]),
            best=ckpt.get("best"),
            optimizer=ckpt["optimizer"],
            torch_rng=ckpt["torch_rng"],
            head_weights=ckpt.get("head_weights"),
            pending_losses=[float(x) for x in ckpt.get("pending_losses") or []],
        )

    def capture(self, optimizer: torch.optim.Optimizer, head: nn.Module | None) -> dict[str, Any]:
        """The checkpoint entries of this state, with the optimiser, RNG and head as they are
        now (call between steps)."""
        return {
            "iteration": self.iteration,
            "history": self.history,
            "best": self.best,
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "head_weights": None
            if head is None
            else {k: v.detach().cpu() for k, v in head.state_dict().items()},
            "pending_losses": list(self.pending_losses),
        }

    def restore(self, optimizer: torch.optim.Optimizer, head: nn.Module | None) -> None:
        """Put the saved optimiser, head and RNG state back (after the weights are loaded)."""
        if head is not None:
            head.load_state_dict(self.head_weights)
        optimizer.load_state_dict(self.optimizer)
        torch.set_rng_state(self.torch_rng)
