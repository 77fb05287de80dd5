"""Projection heads for contrastive losses: they map an encoder embedding h to the space z
where the loss is applied, and are dropped after training (h is what downstream tasks use)."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """z = g(h): an MLP with one hidden layer, BatchNorm and ReLU (SimCLR; Fonseca et al. 2021),
    or a single linear layer when `hidden` is 0 (SoundCLR's 64-d projection).

    Args:
        in_dim: width of the embedding h.
        out_dim: width of z.
        hidden: hidden width; 0 for a linear projection.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 0) -> None:
        super().__init__()
        if hidden > 0:
            self.net: nn.Module = nn.Sequential(
                nn.Linear(in_dim, hidden, bias=False),
                nn.BatchNorm1d(hidden),
                nn.ReLU(inplace=True),
                nn.Linear(hidden, out_dim),
            )
        else:
            self.net = nn.Linear(in_dim, out_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(B, in_dim) -> (B, out_dim); not normalised (the losses normalise)."""
        return self.net(h)  # (B, D) -> (B, out_dim)
