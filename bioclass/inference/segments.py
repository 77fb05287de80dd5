"""Cutting recordings into spans of windows that Ray workers score apart (`--ray`).

A span starts on a multiple of the scanner's batch (the windows of one fast-mode trunk block, or
of one exact-mode forward pass), so every block a worker computes is a block the local scan
computes, on the same samples: the joined scores are bit for bit the local ones. A window belongs
to the span holding its start, so it is scored exactly once. The last span is open-ended: it runs
to wherever the recording really ends (a truncated file ends before its header says).

A span is decoded from the file's start (the resampler is a stream, and a damaged file ends
where its damage is): only so is every sample the local scan's. The k-th span of a file thus
decodes k spans' worth of audio before it scores, which is why files are cut only as far as the
workers need (`auto_segment_seconds`) unless the user asks for a segment length.
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


@dataclass(frozen=True)
class FileLength:
    """What the header says about a file, for cutting it (None when it cannot be read)."""

    samples: int  # expected length at the model's rate
    n_streams: int


def file_length(path: Path, plan: WindowPlan, channels: str | int) -> FileLength | None:
    """The file's expected length and streams, or None when its header cannot be read (it is
    then one span: the worker that scores it meets the local scan's error, word for word)."""
    try:
        info = audio_info(path)
    except AudioError:
        return None
    samples = int(round(info.n_frames * plan.sample_rate / info.sample_rate))
    return FileLength(samples, n_streams_of(channels, info.n_channels))


def file_spans(
    length: FileLength | None,
    plan: WindowPlan,
    mode: str,
    batch_size: int,
    segment_seconds: float | None,
) -> list[WindowSpan]:
    """The spans of one file: of about `segment_seconds` each (rounded up to whole batches),
    or one span (None, or a file whose header could not be read)."""
    if length is None or segment_seconds is None:
        return [(0, None)]
    n_windows = plan.n_windows(length.samples)
    block = batch_windows(mode, batch_size, length.n_streams)
    wanted = max(1, int(segment_seconds * plan.sample_rate) // plan.hop_samples)
    per_span = block * math.ceil(wanted / block)
    starts = list(range(0, n_windows, per_span))
    spans: list[WindowSpan] = [(a, b) for a, b in zip(starts, starts[1:], strict=False)]
    spans.append((starts[-1], None))
    return spans


def auto_segment_seconds(
    lengths: list[FileLength | None], workers: int, sample_rate: int
) -> list[float | None]:
    """Segment lengths when the user gave none: a file is cut only when there are fewer files
    than workers, into as many segments as it takes to keep every worker busy.

    Every segment decodes its file from the start (see `inference.score.score_span`), so the
    k-th segment costs k segments' decoding: cutting pays only where workers would sit idle.
    """
    if not lengths or len(lengths) >= workers:
        return [None] * len(lengths)
    pieces = math.ceil(workers / len(lengths))
    return [None if n is None else n.samples / sample_rate / pieces for n in lengths]


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
