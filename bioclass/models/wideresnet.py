"""WideResNet-28-2 trunk (Zagoruyko & Komodakis 2016) as adapted to audio by Pellegrini (2021).

Pre-activation residual blocks with strided 3x3 convolutions; the PANNs pooled head is added
by :class:`~bioclass.models.classifier.Classifier`.
"""

from __future__ import annotations

import torch
from torch import nn

from bioclass.models.classifier import Classifier, Trunk, init_weights
from bioclass.models.frontend import FrontendConfig, LogMel


class PreActBlock(nn.Module):
    """BN -> ReLU -> conv3x3 (strided) -> BN -> ReLU -> conv3x3, plus a (projected) shortcut.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Stride of the first convolution (and of the shortcut projection).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.shortcut: nn.Conv2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, F, M) -> (B, C_out, ceil(F / stride), ceil(M / stride))."""
        act = self.relu(self.bn1(x))
        out = self.conv1(act)  # (B, C_in, F, M) -> (B, C_out, F', M')
        out = self.conv2(self.relu(self.bn2(out)))
        # As in the reference WRN, the projection sees the pre-activated input.
        skip = x if self.shortcut is None else self.shortcut(act)
        return out + skip


class WideResNet(Trunk):
    """WRN-depth-widen: (B, 1, frames, n_mels) -> (B, 64*widen, ceil(frames/4), ceil(n_mels/4)).

    Args:
        depth: Total depth, 6n + 4 (28 -> 4 blocks per group).
        widen: Width multiplier k (group widths 16k, 32k, 64k).
    """

    def __init__(self, depth: int = 28, widen: int = 2) -> None:
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n + 4, got {depth}")
        n_blocks = (depth - 4) // 6
        self.stem = nn.Conv2d(1, 16, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        in_channels = 16
        for width, stride in ((16 * widen, 1), (32 * widen, 2), (64 * widen, 2)):
            for i in range(n_blocks):
                blocks.append(PreActBlock(in_channels, width, stride if i == 0 else 1))
                in_channels = width
        self.blocks = nn.Sequential(*blocks)
        # Pre-activation blocks end on a conv, so the trunk closes with BN -> ReLU.
        self.bn = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU()
        self.out_channels = in_channels
        # Strided convs with padding 1 give ceil(F / 4); exact for F divisible by 4.
        self.time_stride = 4
        self.freq_stride = 4
        init_weights(self)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, 1, frames, n_mels) -> (B, C, frames', mels')."""
        x = self.stem(spec)  # (B, 1, F, M) -> (B, 16, F, M)
        x = self.blocks(x)  # -> (B, 64k, ceil(F/4), ceil(M/4))
        return self.relu(self.bn(x))


def wideresnet28_2(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """WRN-28-2 classifier with embed_dim 128 (~1.5 M parameters).

    ``block_dropout`` is accepted for a uniform builder signature but unused: WRN-28-2 as
    used by Pellegrini has no dropout inside the trunk.
    """
    del block_dropout
    trunk = WideResNet(28, 2)
    return Classifier(LogMel(frontend), trunk, trunk.out_channels, 128, n_classes, head_dropout)
