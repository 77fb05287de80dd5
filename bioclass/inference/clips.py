"""Batched inference over labelled clips: class scores as the model was trained to give them."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bioclass.core.activation import Activation, activate
from bioclass.data.clips import ClipDataset


@torch.no_grad()
def predict_clips(
    model: nn.Module,
    dataset: ClipDataset,
    activation: Activation | str,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every clip of `dataset` (centre crop / zero pad to the clip length).

    Returns:
        scores (N, C) float32 and true class indices (N,).
    """
    activation = Activation.parse(activation)  # callers may pass the checkpoint's string
    was_training = model.training
    model.eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    out = []
    for wave, _ in loader:
        logits = model(wave.to(device))  # (B, T) -> (B, C)
        out.append(activate(logits.float(), activation).cpu().numpy())
        if on_progress is not None:
            on_progress(len(wave))
    model.train(was_training)
    n_classes = len(dataset.classes)
    scores = np.concatenate(out) if out else np.zeros((0, n_classes), np.float32)
    return scores, dataset.targets.copy()
