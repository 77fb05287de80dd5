"""How a model's logits become the scores users see: one vocabulary for training, checkpoints,
inference and reports.

The training objective decides it (softmax for single-label cross-entropy, sigmoid for binary
cross-entropy, e.g. with MixUp) and the checkpoint stores it, so `scan` and `evaluate` score
exactly as the model was trained to. An encoder from `pretrain` has no classes and no scores.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING

from bioclass.core.errors import BioclassError

if TYPE_CHECKING:  # recipes name activations without importing torch (a fast `bioclass --help`)
    import torch


class Activation(str, Enum):
    """Score activation; its value is what a checkpoint stores (plain data, not pickled)."""

    SOFTMAX = "softmax"  # one label per window: scores sum to 1
    SIGMOID = "sigmoid"  # independent per-class scores (BCE training)
    NONE = "none"  # an encoder: embeddings only, no class scores

    @classmethod
    def parse(cls, value: object, source: str = "checkpoint") -> Activation:
        """The activation named by `value` (an Activation or its stored string)."""
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(a.value for a in cls)
            raise BioclassError(
                f"{source}: unknown score activation {value!r} (expected one of {names})"
            ) from None


def activate(logits: torch.Tensor, activation: Activation | str) -> torch.Tensor:
    """(…, C) logits -> (…, C) scores as the model was trained to give them."""
    import torch

    activation = Activation.parse(activation)
    if activation is Activation.SIGMOID:
        return torch.sigmoid(logits)
    if activation is Activation.SOFTMAX:
        return torch.softmax(logits, dim=-1)
    raise BioclassError("this model is an encoder without classes: it gives no class scores")
