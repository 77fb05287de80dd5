"""Exponential moving average of model weights (Pellegrini 2021: decay 0.995 from 15k steps)."""

from __future__ import annotations

import torch
from torch import nn


class WeightEMA:
    """Keeps `ema = decay * ema + (1 - decay) * weights` for floating-point parameters.

    Buffers (BatchNorm running statistics) are copied, not averaged: they already are averages.
    Before `start` the EMA simply tracks the weights, so it starts from the trained model rather
    than from the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float, start: int) -> None:
        self.decay = decay
        self.start = start
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.active = False  # whether averaging has begun (before, the EMA equals the weights)

    @torch.no_grad()
    def update(self, model: nn.Module, iteration: int) -> None:
        """Fold in the weights after optimiser step `iteration` (1-based)."""
        current = model.state_dict()
        if iteration <= self.start:
            for k, v in current.items():
                self.state[k].copy_(v)
            return
        self.active = True
        params = {name for name, _ in model.named_parameters()}
        for k, v in current.items():
            if k in params and v.is_floating_point():
                self.state[k].mul_(self.decay).add_(v.detach(), alpha=1 - self.decay)
            else:
                self.state[k].copy_(v)

    def load_state(self, state: dict[str, torch.Tensor], iteration: int) -> None:
        """Restore after a resume."""
        for k, v in state.items():
            self.state[k].copy_(v)
        self.active = iteration > self.start
