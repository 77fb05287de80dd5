"""Class scores of labelled clips, as the model was trained to give them.

A clip no longer than the model's window is one window, zero-padded at the end (exactly a
training clip). A longer clip is cut into windows the way `scan` cuts a recording (the same
`WindowPlan`: windows `hop` apart, the last one zero-padded past the end) and the window scores
are pooled into one clip score, so a call at second 12 of a 30 s clip counts; validation,
threshold fitting and `evaluate` all score clips this way, and a scan of a clip gives the same
window scores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bioclass.audio import fit_length
from bioclass.core.activation import Activation, ScoreMap
from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipDataset
from bioclass.inference.stream import WindowPlan
from bioclass.recipe.vocab import POOLINGS


@dataclass(frozen=True)
class ClipPooling:
    """How the windows of a long clip make its score.

    Attributes:
        method: mean_prob (mean of the windows' scores), max_prob (their maximum per class),
            mean_logit (the activation of the windows' mean logits) or centre (the centre
            window alone, as bioclass scored clips before pooling).
        hop_fraction: windows start this fraction of a window apart (scan's default: 0.5).
    """

    method: str = "mean_prob"
    hop_fraction: float = 0.5

    def __post_init__(self) -> None:
        if self.method not in POOLINGS:
            raise BioclassError(f"unknown clip pooling '{self.method}' (use {', '.join(POOLINGS)})")
        if not 0 < self.hop_fraction <= 1:
            raise BioclassError(f"pooling hop must be in (0, 1], got {self.hop_fraction:g}")


def clip_windows(wave: np.ndarray, n_samples: int, pooling: ClipPooling) -> np.ndarray:
    """(K, n_samples) windows of one clip: one padded window for a short clip, the centre crop
    for `centre`, else scan's windows over the whole clip."""
    if wave.shape[0] <= n_samples or pooling.method == "centre":
        return fit_length(wave, n_samples)[None, :]
    hop = max(1, int(round(pooling.hop_fraction * n_samples)))
    plan = WindowPlan(sample_rate=1, window_samples=n_samples, hop_samples=hop)
    starts = plan.starts(wave.shape[0])
    padded = np.zeros(int(starts[-1]) + n_samples, dtype=np.float32)
    padded[: wave.shape[0]] = wave
    return np.stack([padded[s : s + n_samples] for s in starts])


def pool_scores(
    logits: torch.Tensor, score_map: ScoreMap | Activation | str, method: str
) -> torch.Tensor:
    """(K, C) window logits of one clip -> (C,) clip scores (each window's scores as a scan
    makes them, through `score_map`: a bare activation means uncalibrated)."""
    score_map = ScoreMap.of(score_map)
    if method == "mean_logit":
        return score_map(logits.mean(dim=0))
    scores = score_map(logits)
    if method == "max_prob":
        return scores.amax(dim=0)
    return scores.mean(dim=0)  # mean_prob, or the one centre window


def _batches(
    dataset: ClipDataset, pooling: ClipPooling, batch_size: int
) -> Iterator[tuple[np.ndarray, list[int]]]:
    """(windows (W, T), windows per clip) in batches of about `batch_size` windows; a clip's
    windows are never split across batches."""
    n = dataset.spec.n_samples
    chunk: list[np.ndarray] = []
    counts: list[int] = []
    for index in range(len(dataset)):
        windows = clip_windows(dataset.full_wave(index), n, pooling)
        if chunk and sum(counts) + len(windows) > batch_size:
            yield np.concatenate(chunk), counts
            chunk, counts = [], []
        chunk.append(windows)
        counts.append(len(windows))
    if chunk:
        yield np.concatenate(chunk), counts


@torch.no_grad()
def clip_window_logits(
    model: nn.Module,
    dataset: ClipDataset,
    pooling: ClipPooling,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int], None] | None = None,
) -> list[torch.Tensor]:
    """(K_i, C) float32 logits of each clip's windows, on the CPU, in dataset order (one
    forward pass, which several poolings can then share)."""
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    for windows, counts in _batches(dataset, pooling, batch_size):
        logits = model(torch.from_numpy(windows).to(device)).float().cpu()  # (W, T) -> (W, C)
        out.extend(logits.split(counts))
        if on_progress is not None:
            on_progress(len(counts))
    model.train(was_training)
    return out


def pool_clips(
    window_logits: list[torch.Tensor],
    score_map: ScoreMap | Activation | str,
    method: str,
    n_classes: int,
) -> np.ndarray:
    """(N, C) float32 clip scores from each clip's window logits."""
    score_map = ScoreMap.of(score_map)  # callers may pass the checkpoint's activation string
    if not window_logits:
        return np.zeros((0, n_classes), np.float32)
    pooled = [pool_scores(logits, score_map, method) for logits in window_logits]
    return torch.stack(pooled).numpy().astype(np.float32)


def predict_clips(
    model: nn.Module,
    dataset: ClipDataset,
    score_map: ScoreMap | Activation | str,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    on_progress: Callable[[int], None] | None = None,
    pooling: ClipPooling | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every clip of `dataset`, window scores (made by `score_map`: a bare activation
    means uncalibrated) pooled as `pooling` says.

    Returns:
        scores (N, C) float32 and true class indices (N,).
    """
    pooling = pooling if pooling is not None else ClipPooling()
    logits = clip_window_logits(model, dataset, pooling, batch_size, device, on_progress)
    scores = pool_clips(logits, score_map, pooling.method, len(dataset.classes))
    return scores, dataset.targets.copy()
