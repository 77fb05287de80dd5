"""Name -> model builder registry: the one place that maps a recipe's model name to a network."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from bioclass.core.errors import BioclassError
from bioclass.models.classifier import Classifier
from bioclass.models.cnn import cnn6, cnn10, cnn10_half, cnn14
from bioclass.models.frontend import FrontendConfig
from bioclass.models.mobilenet import mobilenetv1
from bioclass.models.resnet import resnet22
from bioclass.models.wideresnet import wideresnet28_2
from bioclass.recipe.quote import shorten

if TYPE_CHECKING:  # annotations only: a scan never loads the recipe schema (its start-up)
    from bioclass.recipe.schema import Recipe

# Each builder: (n_classes, frontend, head_dropout, block_dropout) -> Classifier.
_REGISTRY: dict[str, Callable[..., Classifier]] = {
    "cnn6": cnn6,
    "cnn10": cnn10,
    "cnn10_half": cnn10_half,
    "cnn14": cnn14,
    "mobilenetv1": mobilenetv1,
    "resnet22": resnet22,
    "wideresnet28_2": wideresnet28_2,
}

MODEL_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def known_model(name: str) -> str:
    """The registry key of the model `name` (case and surrounding spaces ignored).

    Raises:
        BioclassError: If ``name`` is not a known model (the message names the closest one).
    """
    key = name.strip().lower()
    if key in _REGISTRY:
        return key
    # No model name is 20 characters long: a longer text cannot be close to one.
    hint = difflib.get_close_matches(key, MODEL_NAMES, n=1) if len(key) <= 64 else []
    did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
    raise BioclassError(
        f"unknown model '{shorten(name)}'{did_you_mean}; choose one of: {', '.join(MODEL_NAMES)}"
    )


def create_model(
    name: str,
    n_classes: int,
    frontend: FrontendConfig | None = None,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """Build a freshly initialised classifier by name.

    Args:
        name: One of :data:`MODEL_NAMES` (case-insensitive).
        n_classes: Number of output logits; 0 gives a headless encoder.
        frontend: Log-mel settings; defaults to ``FrontendConfig()``.
        head_dropout: Dropout in the MLP head.
        block_dropout: Dropout inside the conv trunk (where the architecture has any).

    Returns:
        The model, mapping (B, T) waveforms to (B, n_classes) logits.

    Raises:
        BioclassError: If ``name`` is not a known model.
    """
    builder = _REGISTRY[known_model(name)]
    return builder(
        n_classes,
        frontend if frontend is not None else FrontendConfig(),
        head_dropout=head_dropout,
        block_dropout=block_dropout,
    )


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def frontend_config(recipe: Recipe) -> FrontendConfig:
    """The model's log-mel settings from a recipe's audio section."""
    a = recipe.audio
    return FrontendConfig(a.sample_rate, a.n_fft, a.hop_length, a.n_mels, a.f_min, a.f_max)


def model_from_recipe(recipe: Recipe, n_classes: int) -> Classifier:
    """The recipe's architecture, front end and dropout, freshly initialised (0 classes: an
    encoder)."""
    m = recipe.model
    return create_model(m.name, n_classes, frontend_config(recipe), m.dropout, m.block_dropout)


def create_model_with_weights(
    name: str,
    weights: Mapping[str, torch.Tensor],
    n_classes: int,
    frontend: FrontendConfig | None = None,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """`create_model` holding copies of stored weights, without its random initialisation.

    The model is built on the meta device (shapes only; the front end makes its window and mel
    filters on the CPU all the same) and given the weights (strictly: every parameter and stored
    buffer); a random initialisation would be overwritten anyway, and it is a noticeable part of
    a short scan's start-up. (`Module.to_empty` is not used: on meta tensors it imports sympy,
    0.4 s.)

    Raises:
        RuntimeError: the weights do not fit the architecture (torch's `load_state_dict` message).
    """
    with torch.device("meta"):
        model = create_model(name, n_classes, frontend, head_dropout, block_dropout)
    # Copies: the caller's tensors (a checkpoint it may save again) must not change when the
    # model's do, e.g. when BatchNorm is folded into the convolutions.
    model.load_state_dict({k: v.clone() for k, v in weights.items()}, assign=True)
    # Every tensor came from the weights or was made on the CPU; one that was not has no value.
    empty = [k for k, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if empty:
        raise RuntimeError(f"internal error: {name}'s {empty} have no value after loading")
    return model
