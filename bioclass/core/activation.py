"""How a model's logits become the scores users see: one vocabulary for training, checkpoints,
inference and reports, and the one map (`ScoreMap`: calibration, then activation) that applies it.

The training objective decides it (softmax for single-label cross-entropy, sigmoid for binary
cross-entropy, e.g. with MixUp) and the checkpoint stores it, so `scan` and `evaluate` score
exactly as the model was trained to. Training may also fit a `Calibration` of the logits (see
`evaluation.calibration`), which the checkpoint stores and scan and evaluate apply by default.
An encoder from `pretrain` has no classes and no scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

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


CALIBRATION_METHODS = ("temperature", "platt")


@dataclass(frozen=True)
class Calibration:
    """A fitted map of logits to calibrated logits, applied before the activation.

    Both methods are affine in each class's logit, so they commute with averaging logits over
    windows (`mean_logit` pooling) and keep each class's ranking of windows.

    Attributes:
        method: `temperature` (softmax models: logits / T) or `platt` (sigmoid models: a_c *
            logit_c + b_c per class).
        temperature: T of temperature scaling.
        a, b: Platt's per-class slope and offset.
        fitted_on: which clips and which logits it was fitted on.
        ece_before, ece_after: expected calibration error of those clips without and with it.
    """

    method: str
    temperature: float = 1.0
    a: tuple[float, ...] = ()
    b: tuple[float, ...] = ()
    fitted_on: str = ""
    ece_before: float | None = None
    ece_after: float | None = None

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        """(…, C) logits -> (…, C) calibrated logits."""
        import torch

        if self.method == "temperature":
            return logits / self.temperature
        a = torch.tensor(self.a, dtype=logits.dtype, device=logits.device)
        b = torch.tensor(self.b, dtype=logits.dtype, device=logits.device)
        return logits * a + b

    def to_dict(self) -> dict[str, Any]:
        """The plain data a checkpoint stores (`weights_only=True` loadable)."""
        fitted: dict[str, Any] = (
            {"temperature": float(self.temperature)}
            if self.method == "temperature"
            else {"a": [float(v) for v in self.a], "b": [float(v) for v in self.b]}
        )
        return {
            "method": self.method,
            **fitted,
            "fitted_on": self.fitted_on,
            "ece_before": self.ece_before,
            "ece_after": self.ece_after,
        }

    @classmethod
    def from_dict(cls, data: Any, n_classes: int, source: str = "checkpoint") -> Calibration:
        """The calibration a checkpoint stores, checked (a damaged one is refused, not used)."""
        try:
            method = data["method"]
            if method == "temperature":
                t = float(data["temperature"])
                if not (math.isfinite(t) and t > 0):
                    raise ValueError
                fitted: dict[str, Any] = {"temperature": t}
            elif method == "platt":
                a = tuple(float(v) for v in data["a"])
                b = tuple(float(v) for v in data["b"])
                if len(a) != n_classes or len(b) != n_classes:
                    raise ValueError
                if not all(math.isfinite(v) for v in (*a, *b)):
                    raise ValueError
                fitted = {"a": a, "b": b}
            else:
                raise ValueError
        except (KeyError, TypeError, ValueError):
            raise BioclassError(
                f"{source}: its calibration is damaged (expected method temperature with "
                f"temperature > 0, or platt with {n_classes} values of a and b)"
            ) from None
        return cls(
            method=method,
            fitted_on=str(data.get("fitted_on", "")),
            ece_before=data.get("ece_before"),
            ece_after=data.get("ece_after"),
            **fitted,
        )


@dataclass(frozen=True)
class ScoreMap:
    """The one way logits become scores: the calibration (when applied), then the activation.

    Everything that turns logits into scores a user sees (scan's windows, evaluate's and
    validation's clips, threshold fitting) goes through a ScoreMap, so calibrated scores and
    the thresholds fitted on them cannot drift apart.
    """

    activation: Activation
    calibration: Calibration | None = None

    @classmethod
    def of(cls, value: ScoreMap | Activation | str) -> ScoreMap:
        """`value` as a ScoreMap: a bare activation (or its stored string) is uncalibrated."""
        if isinstance(value, ScoreMap):
            return value
        return cls(Activation.parse(value))

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        """(…, C) logits -> (…, C) scores."""
        if self.calibration is not None:
            logits = self.calibration.apply(logits)
        return activate(logits, self.activation)

    @property
    def calibrated(self) -> bool:
        return self.calibration is not None
