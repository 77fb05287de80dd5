"""Per-window class scores (or embeddings) of one recording, in two modes.

exact: every window goes through the whole model on its own (zero-padded like a training clip),
    exactly what `bioclass evaluate` computes for a clip of that audio.
fast: the convolutional trunk runs once over a block of many windows and each window's features
    are pooled from that shared feature map. The trunk is translation-equivariant, so overlapping
    windows cost almost nothing extra. Two approximations, both documented in the README: a
    window's start is rounded to the trunk's feature grid (hop_length x time_stride samples,
    0.32 s for CNN10 at 16 kHz), and a window's edge frames see the neighbouring audio instead
    of the zero padding an isolated clip gets.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from bioclass.audio import AudioError
from bioclass.audio.finite import all_nonfinite_message, nonfinite_note
from bioclass.core.activation import Activation, ScoreMap
from bioclass.core.errors import BioclassError
from bioclass.inference.arrays import InMemoryRecording
from bioclass.inference.batch_pool import ordered_map, single_threaded_ops
from bioclass.inference.models import CHANNELS_LAST_DEVICES
from bioclass.inference.stream import RecordingReader, WindowPlan, prefetch
from bioclass.models import Classifier
from bioclass.runtime.memory import release_free_heap
from bioclass.runtime.precision import autocast, inference_dtype

log = logging.getLogger(__name__)

# Input frames of real audio kept on each side of a fast-mode block, so windows at block edges
# see the same context as windows in the middle (about the trunk's receptive-field half-width).
CONTEXT_FRAMES = 48


@runtime_checkable
class WholeWindowModel(Protocol):
    """A model another runtime runs (an exported file in onnxruntime): whole windows in, logits
    out. It has no trunk of its own to share between windows, so it is scored in exact mode."""

    def window_logits(self, waves: np.ndarray) -> np.ndarray:
        """(N, window samples) float32 -> (N, classes) float32 logits."""
        ...


ScanModel = Classifier | WholeWindowModel


class OutputKind(Enum):
    """What each window yields."""

    CLASS_SCORES = "class scores"  # the classification layer's logits, activated
    EMBEDDING = "embedding"  # the penultimate layer h (what the classification layer sees)


@dataclass(frozen=True)
class WindowOutput:
    """What to compute for each window: class scores (through score maps), or the embedding."""

    kind: OutputKind
    # For class scores: one ScoreMap shared by every model, or one per model of an ensemble
    # (each member's own calibration acts on its own logits before the scores are averaged).
    score_maps: tuple[ScoreMap, ...] = ()

    @classmethod
    def class_scores(cls, scores: ScoreMap | Activation | str | Sequence[ScoreMap]) -> WindowOutput:
        """Scores as the models were trained (and calibrated) to give them: a ScoreMap, one per
        model, or a bare activation (or its stored string), which means uncalibrated."""
        if isinstance(scores, (ScoreMap, Activation, str)):
            scores = [ScoreMap.of(scores)]
        maps = tuple(scores)
        if not maps or any(m.activation is Activation.NONE for m in maps):
            raise BioclassError(
                "this model is an encoder without classes: it gives no class scores"
            )
        return cls(OutputKind.CLASS_SCORES, maps)

    @classmethod
    def embedding(cls) -> WindowOutput:
        return cls(OutputKind.EMBEDDING)

    @property
    def is_embedding(self) -> bool:
        return self.kind is OutputKind.EMBEDDING


@dataclass
class StreamScores:
    """Window scores of one stream (a channel, or the mono mix) of one recording."""

    channel: int | None
    starts_s: np.ndarray  # (n,) seconds
    ends_s: np.ndarray  # (n,) seconds, clipped to the recording's end
    scores: np.ndarray  # (n, C) float32
    duration_s: float


@dataclass
class FileScores:
    """Everything scanning one file produced."""

    streams: list[StreamScores]
    # What was wrong with the file, scanned anyway: decoding stopped before the length its
    # header announced, non-finite samples replaced with 0 (see `damage_note`).
    note: str | None = None


# Windows [first, stop) of a recording; stop None: to the recording's end.
WindowSpan = tuple[int, "int | None"]


@dataclass
class SpanScores:
    """What scoring a span of a recording's windows produced (`score_span`).

    A span that decoded the recording to its end (the last span always does) knows its length
    and what was wrong with it; an earlier span does not (`n_samples` None).
    """

    streams: list[int | None]  # None = the mono mix, else channel indices
    scores: np.ndarray  # (streams, n, C) float32, the span's windows in order
    n_samples: int | None  # the recording's length at the model's rate, once decoded to its end
    note: str | None = None  # see FileScores.note (spans that reached the end only)


class FileScoringError(BioclassError):
    """One file's scores cannot be trusted (the model gave NaN/Inf for some windows): that file
    fails, with this message, and a scan goes on with the next."""


def check_finite_scores(path: Path | str, scores: np.ndarray, what: str = "scores") -> None:
    """Raise `FileScoringError` unless every window's scores (rows of (..., n, C)) are finite."""
    bad = ~np.isfinite(scores).all(axis=-1)
    if bad.any():
        raise FileScoringError(
            f"{path}: the model gave non-finite {what} (NaN/Inf) for {int(bad.sum())} of "
            f"{bad.size} windows (a damaged checkpoint, or audio with extreme values); "
            "nothing written for this file"
        )


def _finish(out: torch.Tensor, output: WindowOutput, model_index: int) -> torch.Tensor:
    """Logits of the `model_index`-th model -> its scores, or embeddings as they are (in
    float32)."""
    if output.is_embedding:
        return out.float()
    maps = output.score_maps
    return maps[model_index if len(maps) > 1 else 0](out.float())


def ramp_end(k0: int, per_batch: int) -> int:
    """Where the batch starting at window `k0` ends, before the limit of the span: the
    recording's first `per_batch` windows go in doubling batches (8, 8, 16, 32 of 64), so the
    model starts on the first few windows while the next ones decode, instead of waiting for a
    whole batch's audio (a 64-window batch of 3 s windows is 192 s to decode and resample).
    The cuts depend on the window index alone, so every span and every resumed or distributed
    scan cuts the same batches."""
    if k0 >= per_batch:
        return k0 + per_batch
    end = max(1, per_batch // 8)
    while end <= k0:
        end *= 2
    return min(end, per_batch)


def _window_batches(
    reader: RecordingReader,
    plan: WindowPlan,
    per_batch: int,
    span: WindowSpan = (0, None),
    ramp: bool = False,
) -> Iterator[tuple[int, int]]:
    """(first window, number of windows) in batches, discovering the length as it streams.

    Batches start at `span[0]` and stop before `span[1]` (None: the recording's end); with
    `ramp`, the first batch of the recording is cut as `ramp_end` says.
    """
    k0, stop = span
    while stop is None or k0 < stop:
        n = ramp_end(k0, per_batch) - k0 if ramp else per_batch
        n = n if stop is None else min(n, stop - k0)
        last_needed = (k0 + n - 1) * plan.hop_samples + plan.window_samples
        reader.available_until(last_needed)
        if reader.finished:
            total = plan.n_windows(reader.n_samples or 0)
            n = min(n, total - k0)
        if n <= 0:
            return
        yield k0, n
        k0 += n


def exact_batch_windows(batch_size: int, n_streams: int) -> int:
    """Windows per forward pass in exact mode (a batch holds every stream of its windows)."""
    return max(1, batch_size // n_streams)


def _exact_batches(
    reader: RecordingReader, plan: WindowPlan, batch_size: int, span: WindowSpan = (0, None)
) -> Iterator[tuple[int, np.ndarray]]:
    """(first window, audio (streams, K, window)) batches for exact mode."""
    per_batch = exact_batch_windows(batch_size, len(reader.streams))
    reader.skip_to(span[0] * plan.hop_samples)
    for k0, n in _window_batches(reader, plan, per_batch, span, ramp=True):
        start = k0 * plan.hop_samples
        stop = (k0 + n - 1) * plan.hop_samples + plan.window_samples
        audio = reader.read(start, stop)  # (streams, span)
        offsets = np.arange(n) * plan.hop_samples
        index = offsets[:, None] + np.arange(plan.window_samples)  # (K, window)
        yield k0, audio[:, index]  # (streams, K, window)


@dataclass(frozen=True)
class FeatureGrid:
    """How window starts map onto a model's trunk feature frames (fast mode)."""

    samples_per_feature: int  # hop_length * time_stride
    window_features: int  # feature frames pooled per window
    context_features: int  # feature frames of context on each side of a block

    @classmethod
    def of(cls, model: Classifier, plan: WindowPlan) -> FeatureGrid:
        hop_length = model.frontend.config.hop_length
        frames = plan.window_samples // hop_length + 1
        return cls(
            samples_per_feature=hop_length * model.time_stride,
            window_features=max(1, frames // model.time_stride),
            context_features=math.ceil(CONTEXT_FRAMES / model.time_stride),
        )

    def feature_starts(self, k0: int, n: int, plan: WindowPlan) -> np.ndarray:
        """(n,) nearest feature frame of each window's start."""
        starts = (k0 + np.arange(n)) * plan.hop_samples
        return np.rint(starts / self.samples_per_feature).astype(np.int64)


# Fast mode pools windows from the trunk's feature map; below this many feature frames per
# window the pooled window is mostly its neighbours' audio (measured on Bird0's 0.2 s windows:
# event recall 0.19 fast vs 0.62 exact), so the scanner scores such windows exactly instead.
MIN_FAST_WINDOW_FEATURES = 3


def fast_mode_problem(models: Sequence[ScanModel], plan: WindowPlan) -> str | None:
    """Why fast mode would be too coarse for these models and windows, or None if it is fine."""
    for model in models:
        if not isinstance(model, Classifier):
            return "an exported model has no separate trunk to share between windows"
        grid = FeatureGrid.of(model, plan)
        step = grid.samples_per_feature / plan.sample_rate
        if grid.window_features < MIN_FAST_WINDOW_FEATURES:
            return (
                f"a {plan.window_samples / plan.sample_rate:.3g} s window spans only "
                f"{plan.window_samples / grid.samples_per_feature:.2g} of the trunk's "
                f"{step:.3g} s feature steps"
            )
        if plan.hop_samples < grid.samples_per_feature:
            return (
                f"the hop ({plan.hop_samples / plan.sample_rate:.3g} s) is finer than the "
                f"trunk's feature step ({step:.3g} s)"
            )
    return None


def resolve_mode(mode: str, models: Sequence[ScanModel], plan: WindowPlan) -> str:
    """The mode to scan in: 'fast' becomes 'exact', with a warning, where it would blur windows,
    and with an info line for models of another runtime (which score whole windows only) and
    where windows do not overlap (nothing to share, so exact is faster)."""
    if mode == "fast" and not all(isinstance(m, Classifier) for m in models):
        log.info(
            "fast mode needs the model's trunk, which an exported model does not expose: "
            "scanning in exact mode"
        )
        return "exact"
    if mode == "fast" and (problem := fast_mode_problem(models, plan)):
        log.warning("%s: fast mode would blur windows, scanning in exact mode", problem)
        return "exact"
    if mode == "fast" and plan.hop_samples >= plan.window_samples:
        # Windows that do not overlap share no trunk computation, and a block's feature grid
        # and context frames cost more than separate windows (CNN10 at hop = window: fast
        # 0.88x of exact in benchmarks/scan_backends.py).
        log.info("windows do not overlap at this hop: scanning in exact mode, which is faster")
        return "exact"
    return mode


def _fast_blocks(
    reader: RecordingReader,
    plan: WindowPlan,
    grid: FeatureGrid,
    windows_per_block: int,
    span: WindowSpan = (0, None),
) -> Iterator[tuple[int, int, int, np.ndarray]]:
    """(first window, n windows, first feature frame, audio (streams, span)) per block."""
    first_feature = int(grid.feature_starts(span[0], 1, plan)[0]) - grid.context_features
    reader.skip_to(max(0, first_feature) * grid.samples_per_feature)
    for k0, n in _window_batches(reader, plan, windows_per_block, span):
        feats = grid.feature_starts(k0, n, plan)
        first = max(0, int(feats[0]) - grid.context_features)
        last = int(feats[-1]) + grid.window_features + grid.context_features
        audio = reader.read(first * grid.samples_per_feature, last * grid.samples_per_feature)
        yield k0, n, first, audio


@torch.no_grad()
def _scores_exact(
    models: Sequence[ScanModel],
    audio: np.ndarray,
    output: WindowOutput,
    device: torch.device,
    precision: str,
) -> np.ndarray:
    """(streams, K, window) audio -> (streams, K, C) ensemble-mean scores.

    For an embedding `output` it is the embedding h (streams, K, D) instead.
    """
    n_streams, n, _ = audio.shape
    flat = audio.reshape(n_streams * n, -1)  # (S*K, window)
    wave = torch.from_numpy(flat).to(device)
    total = None
    for i, model in enumerate(models):
        if isinstance(model, Classifier):
            with autocast(device, inference_dtype(device, precision)):
                spec = model.spectrogram(wave)  # (S*K, window) -> (S*K, 1, frames, mels)
                if device.type in CHANNELS_LAST_DEVICES:
                    spec = spec.contiguous(memory_format=torch.channels_last)
                # (S*K, 1, frames, mels) -> (S*K, D) embeddings, or (S*K, C) logits
                out = model.embed_spec(spec) if output.is_embedding else model.classify(spec)
        else:
            # Another runtime's model takes the windows as they are: (S*K, window) -> (S*K, C).
            out = torch.from_numpy(model.window_logits(flat))
        scores = _finish(out, output, i)
        total = scores if total is None else total + scores
    return (total / len(models)).cpu().numpy().reshape(n_streams, n, -1)


@torch.no_grad()
def _scores_fast(
    models: list[Classifier],
    grids: list[FeatureGrid],
    audio: np.ndarray,
    local_starts: np.ndarray,
    output: WindowOutput,
    device: torch.device,
    precision: str,
) -> np.ndarray:
    """Block audio (streams, span) -> (streams, K, C) scores pooled from one trunk pass each.

    Args:
        local_starts: (K,) window starts in samples from the block's first sample.
    """
    wave = torch.from_numpy(np.ascontiguousarray(audio)).to(device)  # (S, span)
    total = None
    for i, (model, grid) in enumerate(zip(models, grids, strict=True)):
        n_feat = audio.shape[1] // grid.samples_per_feature
        starts = np.rint(local_starts / grid.samples_per_feature).astype(np.int64)  # (K,)
        with autocast(device, inference_dtype(device, precision)):
            spec = model.spectrogram(wave)  # (S, span) -> (S, 1, frames, mels)
            spec = spec[:, :, : n_feat * model.time_stride]  # whole feature frames only
            if device.type in CHANNELS_LAST_DEVICES:
                spec = spec.contiguous(memory_format=torch.channels_last)
            feat = model.features(spec)  # (S, 1, F, M) -> (S, C, F', M')
            over_time = feat.mean(dim=3)  # (S, C, F', M') -> (S, C, F')
            index = torch.from_numpy(starts).to(device)[:, None] + torch.arange(
                grid.window_features, device=device
            )  # (K, n_g)
            index = index.clamp_(max=over_time.shape[2] - 1)
            windows = over_time[:, :, index]  # (S, C, F') -> (S, C, K, n_g)
            # The same mean + max time pooling as Classifier.pool, per window.
            pooled = windows.mean(dim=3) + windows.amax(dim=3)  # (S, C, K)
            n_streams, channels, n = pooled.shape
            pooled = pooled.permute(0, 2, 1).reshape(n_streams * n, channels)  # (S*K, C)
            # (S*K, C) -> (S*K, D) embeddings, or (S*K, n_classes) logits
            embed = output.is_embedding
            out = model.embed_pooled(pooled) if embed else model.logits_pooled(pooled)
        scores = _finish(out, output, i)
        total = scores if total is None else total + scores
    return (total / len(models)).cpu().numpy().reshape(n_streams, n, -1)


class ScanCancelled(Exception):
    """Raised inside `score_file` when the caller asks it to stop (e.g. after Ctrl-C)."""


def score_file(
    path: Path | InMemoryRecording,
    models: Sequence[ScanModel],
    output: WindowOutput | Activation | str,
    plan: WindowPlan,
    channels: str | int = "mix",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    mode: str = "fast",
    precision: str = "fp32",
    should_stop: Callable[[], bool] | None = None,
) -> FileScores:
    """Window scores of every stream of one recording (an ensemble's scores are averaged).

    Args:
        path: any file libsndfile decodes, or a waveform in memory.
        models: classifiers in eval mode on `device`, all trained on `plan.sample_rate`
            (prepared with `prepare_for_inference` for speed), or models of another runtime
            (`WholeWindowModel`, class scores in exact mode only; see `backends`).
        output: what each window yields: `WindowOutput.class_scores(score_maps)`, or
            `WindowOutput.embedding()` for each window's embedding h (`bioclass embed`). A bare
            activation (or its stored string) means uncalibrated class scores with it.
        plan: window length and hop.
        channels: 'mix', 'each' or a channel index.
        batch_size: windows per batch (exact; a CPU scores each batch in pieces, see
            `PIECE_SAMPLES`) or per trunk block (fast).
        device: torch device of the models.
        mode: 'fast' or 'exact' (see the module docstring).
        precision: 'fp32', 'bf16' or 'amp'.
        should_stop: polled between blocks; when it returns True the file is abandoned.

    Raises:
        AudioError: the file cannot be decoded at all, or every sample is NaN/Inf.
        FileScoringError: the model gave non-finite scores for some window.
        ScanCancelled: `should_stop` asked to stop.
    """
    if not isinstance(output, WindowOutput):
        output = WindowOutput.class_scores(output)
    span = score_span(
        path,
        models,
        output,
        plan,
        (0, None),
        channels,
        batch_size,
        device,
        mode,
        precision,
        should_stop,
    )
    return join_spans(path, [span], output, plan)


def score_span(
    path: Path | InMemoryRecording,
    models: list[Classifier],
    output: WindowOutput,
    plan: WindowPlan,
    span: WindowSpan,
    channels: str | int = "mix",
    batch_size: int = 64,
    device: torch.device | str = "cpu",
    mode: str = "fast",
    precision: str = "fp32",
    should_stop: Callable[[], bool] | None = None,
) -> SpanScores:
    """The scores of windows [span) of one recording, as `score_file` computes them.

    A span that starts and ends on a multiple of the batch (`batch_size` windows in fast mode,
    `exact_batch_windows` in exact mode) gets bit for bit the scores `score_file` gives those
    windows: the recording is decoded (and resampled) from its start, so every block sees the
    same samples, and the blocks are the same. `join_spans` makes one FileScores of the spans.

    Raises:
        AudioError: the file cannot be decoded at all, or (a span that reached the end) no
            sample could be decoded or every sample is NaN/Inf.
        ScanCancelled: `should_stop` asked to stop.
    """
    if len(output.score_maps) > 1 and len(output.score_maps) != len(models):
        raise BioclassError(f"{len(output.score_maps)} score maps for {len(models)} models")
    device = torch.device(device)
    if mode not in ("fast", "exact"):
        raise BioclassError(f"unknown scan mode '{mode}' (use fast or exact)")
    exported = not all(isinstance(m, Classifier) for m in models)
    if exported and (mode == "fast" or output.is_embedding):
        # `resolve_mode` turns fast into exact for them; embeddings need the torch model.
        raise BioclassError("an exported model gives class scores in exact mode only")
    with RecordingReader(path, plan.sample_rate, channels) as reader:
        # A recording of one window or less is scored exactly: it is exactly a training clip.
        reader.available_until(plan.window_samples + 1)
        single = reader.finished and (reader.n_samples or 0) <= plan.window_samples
        chunks: list[np.ndarray] = []
        if mode == "exact" or single:
            batches = prefetch(_exact_batches(reader, plan, batch_size, span))
            if device.type == "cpu" and not exported:
                chunks = _exact_side_by_side(models, batches, plan, output, precision, should_stop)
            else:
                for _, audio in batches:
                    _check(should_stop)
                    chunks.append(_scores_exact(models, audio, output, device, precision))
        else:
            grids = [FeatureGrid.of(m, plan) for m in models]
            # Blocks are cut on the coarsest grid; each model rounds to its own grid within.
            grid = max(grids, key=lambda g: g.samples_per_feature)
            blocks = _fast_blocks(reader, plan, grid, batch_size, span)
            # A block is one trunk pass over a whole batch of overlapping windows (hundreds of
            # MB of activations at hop 1.5 s), so blocks keep PyTorch's threads and run one at
            # a time: side by side they would multiply the memory by the core count.
            for k0, n, first, audio in prefetch(blocks):
                _check(should_stop)
                local = (k0 + np.arange(n)) * plan.hop_samples - first * grid.samples_per_feature
                chunks.append(_scores_fast(models, grids, audio, local, output, device, precision))
        if not reader.finished:
            return SpanScores(list(reader.streams), _joined(chunks, len(reader.streams)), None)
        n_samples = reader.n_samples or 0
        if n_samples == 0:
            reason = f" ({reader.decode_error})" if reader.decode_error else ""
            raise AudioError(f"{path}: no audio samples could be decoded{reason}")
        if reader.all_nonfinite:
            raise AudioError(all_nonfinite_message(path, reader.n_source_samples))
        note = damage_note(reader)
    return SpanScores(list(reader.streams), _joined(chunks, len(reader.streams)), n_samples, note)


# Audio samples per piece that a CPU scores on one thread in exact mode (8 windows of 3 s at
# 16 kHz). Small pieces keep a window's activations in the core's cache: CNN10 on 2 cores ran
# 2 single-threaded workers on pieces of 8 windows in 2.75 s per 10-minute file, against 3.21 s
# for batches of 64 on 2 threads (benchmarks/scan_breakdown.py). The cut is fixed, not chosen by
# the core count, because a piece's size can move scores in the last bits (4e-8 for CNN10):
# every machine, span and resumed scan cuts the same pieces and gets the same scores.
PIECE_SAMPLES = 8 * 48_000


def piece_windows(plan: WindowPlan, n_streams: int) -> int:
    """Windows per piece a CPU scores on one thread (each piece holds every stream)."""
    return max(1, PIECE_SAMPLES // (plan.window_samples * n_streams))


def _exact_side_by_side(
    models: Sequence[ScanModel],
    batches: Iterator[tuple[int, np.ndarray]],
    plan: WindowPlan,
    output: WindowOutput,
    precision: str,
    should_stop: Callable[[], bool] | None,
) -> list[np.ndarray]:
    """Exact-mode scores of PyTorch models on a CPU: each batch cut into pieces, scored side by
    side on single-threaded workers, one per intra-op thread PyTorch had (see `batch_pool`)."""
    cpu = torch.device("cpu")

    def pieces() -> Iterator[np.ndarray]:
        for _, audio in batches:  # (streams, K, window)
            release_free_heap()  # what the last batch's pieces freed (see runtime.memory)
            per = piece_windows(plan, audio.shape[0])
            for i in range(0, audio.shape[1], per):
                yield audio[:, i : i + per]

    def score(audio: np.ndarray) -> np.ndarray:
        return _scores_exact(models, audio, output, cpu, precision)

    with single_threaded_ops() as workers:
        return list(ordered_map(score, pieces(), workers, lambda: _check(should_stop)))


def _joined(chunks: list[np.ndarray], n_streams: int) -> np.ndarray:
    """(streams, n, C) float32 of the blocks' scores; (streams, 0, 0) for a span past the end."""
    if not chunks:
        return np.zeros((n_streams, 0, 0), dtype=np.float32)
    return np.concatenate(chunks, axis=1).astype(np.float32)


def join_spans(
    path: Path | InMemoryRecording,
    spans: list[SpanScores],
    output: WindowOutput,
    plan: WindowPlan,
) -> FileScores:
    """One recording's FileScores from the scores of its consecutive spans, the last of which
    reached the recording's end.

    Raises:
        FileScoringError: the model gave non-finite scores for some window.
    """
    end = next(s for s in spans if s.n_samples is not None)
    # (streams, n, C); a span that started past a (truncated) recording's end holds no windows
    scores = np.concatenate([s.scores for s in spans if s.scores.shape[1]], axis=1)
    check_finite_scores(path, scores, "embeddings" if output.is_embedding else "scores")
    n_samples = end.n_samples or 0
    starts_s, ends_s = plan.times(n_samples)
    duration = n_samples / plan.sample_rate
    return FileScores(
        streams=[
            StreamScores(channel, starts_s, ends_s, scores[i], duration)
            for i, channel in enumerate(end.streams)
        ],
        note=end.note,
    )


def _check(should_stop: Callable[[], bool] | None) -> None:
    if should_stop is not None and should_stop():
        raise ScanCancelled


def damage_note(reader: RecordingReader) -> str | None:
    """What was wrong with a file read to its end, or None: where decoding failed or the file
    ended short of its header, and how many samples were NaN/Inf (each part joined by '; ')."""
    notes = []
    if reader.decode_error:
        notes.append(
            f"decoding failed at {reader.decoded_seconds:.2f} s of "
            f"{reader.expected_seconds:.2f} s ({reader.decode_error}); scanned up to there"
        )
    elif reader.truncated:
        notes.append(
            f"truncated: header says {reader.expected_seconds:.2f} s, file holds "
            f"{reader.decoded_seconds:.2f} s; scanned what is there"
        )
    if reader.n_nonfinite:
        notes.append(nonfinite_note(reader.n_nonfinite, reader.n_source_samples))
    return "; ".join(notes) or None
