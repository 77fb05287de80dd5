"""PANNs "standard CNN" family (Cnn6, Cnn10, Cnn14): one parametrised trunk plus named variants.

Following Kong et al. (PANNs, 2020) as used by Pellegrini (Interspeech 2021): blocks of
conv (no bias) -> BN -> ReLU, then 2x2 average pooling and dropout.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from bioclass.models.classifier import Classifier, Trunk, init_weights
from bioclass.models.frontend import FrontendConfig, LogMel


class ConvBlock(nn.Sequential):
    """``n_convs`` x (conv -> BN -> ReLU), then average pooling and dropout.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        n_convs: Convolutions in the block (1 for Cnn6, 2 for Cnn10/Cnn14).
        kernel_size: Square kernel size; padding keeps the spatial size ("same").
        pool: Square average-pooling size; 1 means no pooling.
        dropout: Dropout probability after pooling.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        n_convs: int = 2,
        kernel_size: int = 3,
        pool: int = 2,
        dropout: float = 0.2,
    ) -> None:
        layers: list[nn.Module] = []
        for i in range(n_convs):
            layers += [
                # No bias: the following BN has its own shift.
                nn.Conv2d(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    kernel_size,
                    padding=kernel_size // 2,
                    bias=False,
                ),
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
            ]
        if pool > 1:
            layers.append(nn.AvgPool2d(pool))
        layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class PannsCnn(Trunk):
    """Stack of :class:`ConvBlock` s: (B, 1, frames, n_mels) -> (B, C, frames', mels').

    Args:
        channels: Output channels of each block.
        n_convs: Convolutions per block.
        kernel_size: Kernel size of every convolution.
        pools: Average-pooling size of each block (same length as ``channels``).
        block_dropout: Dropout after each block.
    """

    def __init__(
        self,
        channels: Sequence[int],
        n_convs: int,
        kernel_size: int,
        pools: Sequence[int],
        block_dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(channels) != len(pools):
            raise ValueError("channels and pools must have the same length")
        in_channels = [1, *channels[:-1]]
        self.blocks = nn.Sequential(
            *(
                ConvBlock(c_in, c_out, n_convs, kernel_size, pool, block_dropout)
                for c_in, c_out, pool in zip(in_channels, channels, pools, strict=True)
            )
        )
        self.out_channels = channels[-1]
        self.time_stride = math.prod(pools)
        self.freq_stride = self.time_stride  # square pools
        init_weights(self)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, 1, frames, n_mels) -> (B, C, frames // stride, n_mels // stride)."""
        return self.blocks(spec)  # (B, 1, F, M) -> (B, C, F', M')


def _build(
    trunk: PannsCnn, embed_dim: int, n_classes: int, frontend: FrontendConfig, head_dropout: float
) -> Classifier:
    return Classifier(
        LogMel(frontend), trunk, trunk.out_channels, embed_dim, n_classes, head_dropout
    )


def cnn6(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """PANNs Cnn6: four single 5x5-conv blocks (64..512), all pooled 2x2; embed 512."""
    trunk = PannsCnn((64, 128, 256, 512), 1, 5, (2, 2, 2, 2), block_dropout)
    return _build(trunk, 512, n_classes, frontend, head_dropout)


def cnn10(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """PANNs Cnn10: four double 3x3-conv blocks (64..512), all pooled 2x2; embed 512."""
    trunk = PannsCnn((64, 128, 256, 512), 2, 3, (2, 2, 2, 2), block_dropout)
    return _build(trunk, 512, n_classes, frontend, head_dropout)


def cnn10_half(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """Cnn10 at half the width: four double 3x3-conv blocks (32..256), all pooled 2x2; embed
    256. A quarter of Cnn10's multiply-adds (0.98 against 3.86 GFLOP per 3 s window at 16 kHz),
    made for distilled scanning models (`bioclass distill`); no PANNs checkpoint exists for it."""
    trunk = PannsCnn((32, 64, 128, 256), 2, 3, (2, 2, 2, 2), block_dropout)
    return _build(trunk, 256, n_classes, frontend, head_dropout)


def cnn14(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """PANNs Cnn14: six double 3x3-conv blocks (64..2048), the last unpooled; embed 2048."""
    trunk = PannsCnn((64, 128, 256, 512, 1024, 2048), 2, 3, (2, 2, 2, 2, 2, 1), block_dropout)
    return _build(trunk, 2048, n_classes, frontend, head_dropout)
