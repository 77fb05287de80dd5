"""PANNs ResNet22 trunk: conv stem, four layers of basic residual blocks, wide conv block after.

Downsampling is 2x2 average pooling everywhere (PANNs style), so every stage floors sizes.
"""

from __future__ import annotations

import torch
from torch import nn

from bioclass.models.classifier import Classifier, Trunk, init_weights
from bioclass.models.cnn import ConvBlock
from bioclass.models.frontend import FrontendConfig, LogMel


class BasicBlock(nn.Module):
    """Two 3x3 conv+BN residual block; downsampling by 2x2 average pooling before conv1.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        downsample: Halve time and frequency.
        dropout: Dropout between the two convolutions (PANNs uses 0.1).
    """

    def __init__(
        self, in_channels: int, out_channels: int, downsample: bool, dropout: float
    ) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(2) if downsample else nn.Identity()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            # PANNs' shortcut is avgpool -> 1x1 conv -> BN; the pool is shared with the main path.
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, F, M) -> (B, C_out, F', M'), F' = F // 2 when downsampling."""
        x = self.pool(x)  # (B, C_in, F, M) -> (B, C_in, F', M')
        out = self.relu(self.bn1(self.conv1(x)))  # (B, C_out, F', M')
        out = self.bn2(self.conv2(self.dropout(out)))
        return self.relu(out + self.shortcut(x))


class ResNet22(Trunk):
    """PANNs ResNet22: (B, 1, frames, n_mels) -> (B, 2048, frames // 32, n_mels // 32).

    Args:
        block_dropout: Dropout after the stem, the residual layers and the final conv block;
            half of it is used inside each residual block (PANNs: 0.2 and 0.1).
    """

    def __init__(self, block_dropout: float = 0.2) -> None:
        super().__init__()
        self.stem = ConvBlock(1, 64, n_convs=2, kernel_size=3, pool=2, dropout=block_dropout)
        layers: list[nn.Module] = []
        in_channels = 64
        for i, planes in enumerate((64, 128, 256, 512)):
            # Two blocks per layer; layers 2-4 halve the resolution in their first block.
            layers += [
                BasicBlock(in_channels, planes, downsample=i > 0, dropout=block_dropout / 2),
                BasicBlock(planes, planes, downsample=False, dropout=block_dropout / 2),
            ]
            in_channels = planes
        self.layers = nn.Sequential(*layers)
        self.post_pool = nn.Sequential(nn.AvgPool2d(2), nn.Dropout(block_dropout))
        self.conv_after = ConvBlock(
            512, 2048, n_convs=2, kernel_size=3, pool=1, dropout=block_dropout
        )
        self.out_channels = 2048
        self.time_stride = 2 * 2**3 * 2  # stem, layers 2-4, post_pool
        self.freq_stride = self.time_stride
        init_weights(self)
        for m in self.modules():
            if isinstance(m, BasicBlock):
                # Zero-init the residual branch's last BN so each block starts as identity
                # (PANNs' zero_init_residual); eases optimisation of the deep stack.
                nn.init.zeros_(m.bn2.weight)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, 1, frames, n_mels) -> (B, 2048, frames', mels')."""
        x = self.stem(spec)  # (B, 1, F, M) -> (B, 64, F/2, M/2)
        x = self.layers(x)  # -> (B, 512, F/16, M/16)
        x = self.post_pool(x)  # -> (B, 512, F/32, M/32)
        return self.conv_after(x)  # -> (B, 2048, F/32, M/32)


def resnet22(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """PANNs ResNet22 classifier with embed_dim 2048."""
    trunk = ResNet22(block_dropout)
    return Classifier(LogMel(frontend), trunk, trunk.out_channels, 2048, n_classes, head_dropout)
