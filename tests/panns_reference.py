"""PANNs' published networks (Kong et al. 2020; audioset_tagging_cnn, pytorch/models.py) rebuilt
with PANNs' own parameter names and layer layout, so the tests can make the checkpoints no test
can download. Inference only: no SpecAugment, MixUp or dropout.
"""

from __future__ import annotations

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SAMPLE_RATE, WINDOW, HOP, MELS, FMIN, FMAX = 32000, 1024, 320, 64, 50, 14000


class _STFT(nn.Module):
    """torchlibrosa's STFT: the DFT matrix times a periodic Hann window, as two conv kernels."""

    def __init__(self) -> None:
        super().__init__()
        n_freqs = WINDOW // 2 + 1
        n, k = np.arange(WINDOW), np.arange(n_freqs)[:, None]
        window = 0.5 - 0.5 * np.cos(2 * np.pi * n / WINDOW)
        angle = 2 * np.pi * k * n / WINDOW  # (n_freqs, WINDOW)
        # from_numpy stays on the CPU when the rest is built on the meta device.
        real = torch.from_numpy((np.cos(angle) * window).astype(np.float32))[:, None, :]
        imag = torch.from_numpy((-np.sin(angle) * window).astype(np.float32))[:, None, :]
        self.conv_real = nn.Conv1d(1, n_freqs, WINDOW, stride=HOP, bias=False)
        self.conv_imag = nn.Conv1d(1, n_freqs, WINDOW, stride=HOP, bias=False)
        self.conv_real.weight = nn.Parameter(real, requires_grad=False)
        self.conv_imag.weight = nn.Parameter(imag, requires_grad=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = F.pad(wave[:, None, :], (WINDOW // 2, WINDOW // 2), mode="reflect")
        power = self.conv_real(x) ** 2 + self.conv_imag(x) ** 2  # (B, n_freqs, frames)
        return power.transpose(1, 2)[:, None]  # (B, 1, frames, n_freqs)


class _Spectrogram(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stft = _STFT()


class _LogmelFilterBank(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        mel = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=WINDOW, n_mels=MELS, fmin=FMIN, fmax=FMAX)
        self.melW = nn.Parameter(torch.from_numpy(mel.T.copy()), requires_grad=False)

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        return 10.0 * torch.log10(torch.clamp(power @ self.melW, min=1e-10))  # top_db None


class _ConvBlock(nn.Module):
    """PANNs ConvBlock (two 3x3 convs) or ConvBlock5x5 (one 5x5 conv)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3) -> None:
        super().__init__()
        self.double = kernel == 3
        self.conv1 = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        if self.double:
            self.conv2 = nn.Conv2d(c_out, c_out, kernel, padding=kernel // 2, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor, pool: int) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.double:
            x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool)


class PannsNet(nn.Module):
    """Common shell: front end, bn0, trunk, fc1 (embedding), fc_audioset (527 classes)."""

    embed_dim: int

    def __init__(self) -> None:
        super().__init__()
        self.spectrogram_extractor = _Spectrogram()
        self.logmel_extractor = _LogmelFilterBank()
        self.bn0 = nn.BatchNorm2d(MELS)

    def _head(self, embed_in: int, embed_dim: int) -> None:
        self.fc1 = nn.Linear(embed_in, embed_dim)
        self.fc_audioset = nn.Linear(embed_dim, 527)

    def log_mel(self, wave: torch.Tensor) -> torch.Tensor:
        return self.logmel_extractor(self.spectrogram_extractor.stft(wave))  # (B, 1, T, mels)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, wave: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.bn0(self.log_mel(wave).transpose(1, 3)).transpose(1, 3)
        x = self.trunk(x).mean(dim=3)
        x = x.amax(dim=2) + x.mean(dim=2)
        embedding = F.relu(self.fc1(x))
        return {
            "embedding": embedding,
            "clipwise_output": torch.sigmoid(self.fc_audioset(embedding)),
        }


class Cnn(PannsNet):
    """Cnn6 (kernel 5, widths to 512), Cnn10 (kernel 3, to 512), Cnn14 (kernel 3, to 2048)."""

    def __init__(self, kernel: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        self.n_blocks = len(widths)
        for i, (c_in, c_out) in enumerate(zip((1, *widths[:-1]), widths, strict=True)):
            setattr(self, f"conv_block{i + 1}", _ConvBlock(c_in, c_out, kernel))
        self._head(widths[-1], widths[-1])

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(self.n_blocks):
            x = getattr(self, f"conv_block{i + 1}")(x, 1 if i == 5 else 2)  # Cnn14's last: 1x1
        return x


def _conv_bn(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False),
        nn.AvgPool2d(stride),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


def _conv_dw(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in, bias=False),
        nn.AvgPool2d(stride),
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


class MobileNetV1(PannsNet):
    def __init__(self) -> None:
        super().__init__()
        plan = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1)]
        plan += [(256, 512, 2), *[(512, 512, 1)] * 5, (512, 1024, 2), (1024, 1024, 1)]
        self.features = nn.Sequential(_conv_bn(1, 32, 2), *(_conv_dw(*p) for p in plan))
        self._head(1024, 1024)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride == 2:
            self.downsample = nn.Sequential(
                nn.AvgPool2d(2), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.avg_pool2d(x, 2) if self.stride == 2 else x
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(out)))))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class _ResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        c_in = 64
        for i, width in enumerate((64, 128, 256, 512)):
            stride = 1 if i == 0 else 2
            blocks = [_BasicBlock(c_in, width, stride), _BasicBlock(width, width, 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            c_in = width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ResNet22(PannsNet):
    def __init__(self) -> None:
        super().__init__()
        self.conv_block1 = _ConvBlock(1, 64)
        self.resnet = _ResNet()
        self.conv_block_after1 = _ConvBlock(512, 2048)
        self._head(2048, 2048)

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        x = self.resnet(self.conv_block1(x, 2))
        return self.conv_block_after1(F.avg_pool2d(x, 2), 1)


def build(name: str) -> PannsNet:
    """The PANNs network bioclass calls `name`."""
    if name == "mobilenetv1":
        return MobileNetV1()
    if name == "resnet22":
        return ResNet22()
    kernel, widths = {
        "cnn6": (5, (64, 128, 256, 512)),
        "cnn10": (3, (64, 128, 256, 512)),
        "cnn14": (3, (64, 128, 256, 512, 1024, 2048)),
    }[name]
    return Cnn(kernel, widths)


def save_like_panns(state: dict[str, torch.Tensor], path) -> None:
    """As PANNs' main.py saves: the weights next to the iteration and the data sampler's state,
    whose numpy arrays are why a plain weights-only load refuses these files."""
    sampler = {
        "indexes_per_class": [np.arange(5), np.array([3, 9])],
        "queue": [np.int64(4), 7],
        "pointers_of_classes": [0, 1],
    }
    torch.save({"iteration": 660000, "model": state, "sampler": sampler}, path)
