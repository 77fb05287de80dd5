"""Cutting a recording into spans of windows that workers can score apart (`bioclass scan --ray`).

A span starts on a multiple of the scanner's batch (the windows of one fast-mode trunk block, or
of one exact-mode forward pass), so every block a worker computes is a block the local scan
computes, on the same samples: the joined scores are bit for bit the local ones. A window belongs
to the span holding its start, so it is scored exactly once. The last span is open-ended: it runs
to wherever the recording really ends (a truncated file ends before its header says).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bioclass.audio import AudioError, audio_info
from bioclass.inference.score import WindowSpan, exact_batch_windows
from bioclass.inference.stream import WindowPlan


@dataclass(frozen=True)
class Segment:
    """One span of one file, as dealt out to a worker."""

    file_index: int  # the file's place in the input order
    index: int  # the span's place in its file
    span: WindowSpan
    samples: int  # its expected length at the model's rate (largest first)


def batch_windows(mode: str, batch_size: int, n_streams: int) -> int:
    """Windows per block the scanner computes at once: spans are cut on multiples of it."""
    return batch_size if mode == "fast" else exact_batch_windows(batch_size, n_streams)


def n_streams_of(channels: str | int, n_channels: int) -> int:
    """How many streams a file of `n_channels` yields for `--channels`."""
    return n_channels if channels == "each" else 1


def file_spans(
    path: Path,
    plan: WindowPlan,
    mode: str,
    batch_size: int,
    channels: str | int,
    segment_seconds: float,
) -> tuple[list[WindowSpan], int]:
    """The spans of one file and its expected length in samples at the model's rate.

    A file whose header cannot be read is one span: the worker that scores it meets the same
    error the local scan does, with the same message.
    """
    try:
        info = audio_info(path)
    except AudioError:
        return [(0, None)], 0
    samples = int(round(info.n_frames * plan.sample_rate / info.sample_rate))
    n_windows = plan.n_windows(samples)
    block = batch_windows(mode, batch_size, n_streams_of(channels, info.n_channels))
    wanted = max(1, int(segment_seconds * plan.sample_rate) // plan.hop_samples)
    per_span = block * math.ceil(wanted / block)
    starts = list(range(0, n_windows, per_span))
    spans: list[WindowSpan] = [(a, b) for a, b in zip(starts, starts[1:], strict=False)]
    spans.append((starts[-1], None))
    return spans, samples


def segments_largest_first(
    spans: dict[int, list[WindowSpan]], samples: dict[int, int], plan: WindowPlan
) -> list[Segment]:
    """Every file's segments, the longest files first (ties in input order), each file's
    segments in order: long files spread over the workers early, short ones fill in at the end.
    """
    out = []
    for i in sorted(spans, key=lambda i: (-samples[i], i)):
        for j, span in enumerate(spans[i]):
            first, stop = span
            if stop is None:
                length = max(samples[i] - first * plan.hop_samples, 0)
            else:
                length = (stop - first) * plan.hop_samples
            out.append(Segment(i, j, span, length))
    return out
