"""PANNs MobileNetV1 trunk: depthwise-separable convs, stride 2 done by 2x2 average pooling."""

from __future__ import annotations

import torch
from torch import nn

from bioclass.models.classifier import Classifier, Trunk, init_weights
from bioclass.models.frontend import FrontendConfig, LogMel

# (in, out, downsample) of each depthwise-separable block after the stem (Howard et al. 2017).
_DW_BLOCKS: tuple[tuple[int, int, bool], ...] = (
    (32, 64, False),
    (64, 128, True),
    (128, 128, False),
    (128, 256, True),
    (256, 256, False),
    (256, 512, True),
    *((512, 512, False),) * 5,
    (512, 1024, True),
    (1024, 1024, False),
)


def _conv_bn(in_channels: int, out_channels: int, downsample: bool) -> nn.Sequential:
    """3x3 conv [-> 2x2 avg pool] -> BN -> ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)]
    if downsample:
        layers.append(nn.AvgPool2d(2))
    layers += [nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)


def _conv_dw(in_channels: int, out_channels: int, downsample: bool) -> nn.Sequential:
    """Depthwise 3x3 [-> 2x2 avg pool] -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, in_channels, 3, padding=1, groups=in_channels, bias=False)
    ]
    if downsample:
        layers.append(nn.AvgPool2d(2))
    layers += [
        nn.BatchNorm2d(in_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(in_channels, out_channels, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]
    return nn.Sequential(*layers)


class MobileNetV1(Trunk):
    """PANNs MobileNetV1: (B, 1, frames, n_mels) -> (B, 1024, frames // 32, n_mels // 32)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            _conv_bn(1, 32, downsample=True),
            *(_conv_dw(c_in, c_out, down) for c_in, c_out, down in _DW_BLOCKS),
        )
        n_down = 1 + sum(down for _, _, down in _DW_BLOCKS)
        self.out_channels = _DW_BLOCKS[-1][1]
        self.time_stride = 2**n_down
        self.freq_stride = self.time_stride
        init_weights(self)

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        """(B, 1, frames, n_mels) -> (B, 1024, frames', mels')."""
        return self.features(spec)  # (B, 1, F, M) -> (B, 1024, F // 32, M // 32)


def mobilenetv1(
    n_classes: int,
    frontend: FrontendConfig,
    head_dropout: float = 0.5,
    block_dropout: float = 0.2,
) -> Classifier:
    """PANNs MobileNetV1 classifier with embed_dim 1024.

    ``block_dropout`` is accepted for a uniform builder signature but unused: PANNs'
    MobileNetV1 has no dropout inside its trunk.
    """
    del block_dropout
    trunk = MobileNetV1()
    return Classifier(LogMel(frontend), trunk, trunk.out_channels, 1024, n_classes, head_dropout)
