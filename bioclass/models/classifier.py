"""The classifier shell shared by every architecture: front end + conv trunk + pooled MLP head.

Architectures differ only in their trunk; this module also holds the trunk interface and the
PANNs-style weight init the trunks use.
"""

from __future__ import annotations

import torch
from torch import nn

from bioclass.core.errors import BioclassError
from bioclass.models.frontend import LogMel


class Trunk(nn.Module):
    """Base for conv stacks mapping (B, 1, frames, n_mels) -> (B, C, frames', mels').

    Subclasses set:
        out_channels: C.
        time_stride: Input frames spanned by one output frame (product of the time
            downsampling factors); frames' == frames // time_stride for pooling trunks.
        freq_stride: The same for the mel axis.
    """

    out_channels: int
    time_stride: int
    freq_stride: int


def init_weights(module: nn.Module) -> None:
    """PANNs-style init for every layer in ``module``: Xavier-uniform conv/linear, BN = identity.

    Args:
        module: Module whose Conv2d, Linear and BatchNorm layers are (re)initialised in place.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Classifier(nn.Module):
    """Waveform -> clip-level logits (multi-label or multi-class; no sigmoid/softmax here).

    Args:
        frontend: Log-mel front end (includes bn0).
        trunk: Conv stack (B, 1, frames, n_mels) -> (B, trunk_channels, frames', mels');
            must expose ``time_stride`` (and optionally ``freq_stride``).
        trunk_channels: Channels C of the trunk output.
        embed_dim: Width of the embedding layer fc1.
        n_classes: Number of output logits; 0 builds a headless encoder whose
            ``forward`` returns the embedding.
        head_dropout: Dropout before fc1 and before fc.
    """

    def __init__(
        self,
        frontend: LogMel,
        trunk: nn.Module,
        trunk_channels: int,
        embed_dim: int,
        n_classes: int,
        head_dropout: float = 0.5,
    ) -> None:
        super().__init__()
        if n_classes < 0:
            raise ValueError(f"n_classes must be >= 0, got {n_classes}")
        if not hasattr(trunk, "time_stride"):
            raise TypeError("trunk must expose a 'time_stride' attribute")
        self.frontend = frontend
        self.trunk = trunk
        self.trunk_channels = trunk_channels
        self.embed_dim = embed_dim
        self.n_classes = n_classes
        self.time_stride = int(trunk.time_stride)
        self.freq_stride = int(getattr(trunk, "freq_stride", 1))
        self.dropout = nn.Dropout(head_dropout)
        self.fc1 = nn.Linear(trunk_channels, embed_dim)
        self.fc: nn.Linear | None = nn.Linear(embed_dim, n_classes) if n_classes > 0 else None
        init_weights(self.fc1)
        if self.fc is not None:
            init_weights(self.fc)

    @property
    def headless(self) -> bool:
        """True when the model has no classification layer (``n_classes == 0``)."""
        return self.fc is None

    def spectrogram(self, wave: torch.Tensor) -> torch.Tensor:
        """Normalised log-mel spectrogram.

        Args:
            wave: Waveform, shape (B, T).

        Returns:
            Tensor of shape (B, 1, frames, n_mels).
        """
        return self.frontend(wave)  # (B, T) -> (B, 1, frames, n_mels)

    def features(self, spec: torch.Tensor) -> torch.Tensor:
        """Trunk feature map.

        Args:
            spec: Spectrogram, shape (B, 1, frames, n_mels).

        Returns:
            Tensor of shape (B, C, frames', mels').
        """
        frames, mels = spec.shape[-2], spec.shape[-1]
        # Pooling trunks would otherwise fail deep inside with an opaque size error.
        if frames < self.time_stride or mels < self.freq_stride:
            raise BioclassError(
                f"input too short for this model: {frames} frames x {mels} mel bins, "
                f"need at least {self.time_stride} x {self.freq_stride}"
            )
        return self.trunk(spec)  # (B, 1, frames, n_mels) -> (B, C, frames', mels')

    def pool(self, feat: torch.Tensor) -> torch.Tensor:
        """Global pooling: mean over frequency, then mean + max over time.

        Args:
            feat: Feature map, shape (B, C, frames', mels').

        Returns:
            Tensor of shape (B, C).
        """
        x = feat.mean(dim=3)  # (B, C, frames', mels') -> (B, C, frames')
        # Mean catches sustained sounds, max catches short calls; PANNs sums both.
        return x.mean(dim=2) + x.amax(dim=2)  # (B, C, frames') -> (B, C)

    def embed_spec(self, spec: torch.Tensor) -> torch.Tensor:
        """Embedding of a spectrogram.

        Args:
            spec: Spectrogram, shape (B, 1, frames, n_mels).

        Returns:
            Tensor of shape (B, embed_dim).
        """
        return self.embed_pooled(self.pool(self.features(spec)))  # (B, 1, frames, n_mels) -> (B, D)

    def embed_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Embedding from pooled trunk features (lets a scanner pool windows of one long map).

        Args:
            pooled: Output of `pool`, shape (B, C).

        Returns:
            Tensor of shape (B, embed_dim).
        """
        return torch.relu(self.fc1(self.dropout(pooled)))  # (B, C) -> (B, embed_dim)

    def logits_pooled(self, pooled: torch.Tensor) -> torch.Tensor:
        """Logits from pooled trunk features, shape (B, C) -> (B, n_classes)."""
        if self.fc is None:
            raise ValueError("headless model (n_classes=0) has no classification layer")
        return self.fc(self.dropout(self.embed_pooled(pooled)))  # (B, C) -> (B, n_classes)

    def embed_and_classify(self, spec: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding and logits of a spectrogram from one trunk pass (hybrid losses need both).

        Args:
            spec: Spectrogram, shape (B, 1, frames, n_mels).

        Returns:
            (h of shape (B, embed_dim), logits of shape (B, n_classes)).
        """
        if self.fc is None:
            raise ValueError("headless model (n_classes=0) has no classification layer")
        h = self.embed_spec(spec)  # (B, 1, F, M) -> (B, D)
        return h, self.fc(self.dropout(h))  # (B, D) -> (B, n_classes)

    def classify(self, spec: torch.Tensor) -> torch.Tensor:
        """Logits of a spectrogram.

        Args:
            spec: Spectrogram, shape (B, 1, frames, n_mels).

        Returns:
            Logits of shape (B, n_classes).

        Raises:
            ValueError: If the model is headless.
        """
        return self.logits_pooled(self.pool(self.features(spec)))  # (B, 1, F, M) -> (B, n_classes)

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """Embedding of a waveform.

        Args:
            wave: Waveform, shape (B, T).

        Returns:
            Tensor of shape (B, embed_dim).
        """
        return self.embed_spec(self.spectrogram(wave))  # (B, T) -> (B, embed_dim)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        """Logits, or the embedding for a headless model.

        Args:
            wave: Waveform, shape (B, T).

        Returns:
            Tensor of shape (B, n_classes), or (B, embed_dim) when headless.
        """
        if self.fc is None:
            return self.embed(wave)  # (B, T) -> (B, embed_dim)
        return self.classify(self.spectrogram(wave))  # (B, T) -> (B, n_classes)
