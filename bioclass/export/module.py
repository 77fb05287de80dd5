"""The module an export traces: a classifier prepared for inference, seen as a function of one
named input (exporters name the file's input after the argument)."""

from __future__ import annotations

import torch
from torch import nn

from bioclass.models import Classifier


class WaveformClassifier(nn.Module):
    """(batch, window samples) float32 waveforms at the model's rate -> (batch, classes) logits:
    the front end, trunk and head of `classifier`, exactly its forward."""

    def __init__(self, classifier: Classifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return self.classifier(waveform)
