"""Decode and resample one recording in bounded blocks, and cut it into sliding windows.

A 24-hour file is never held whole: libsndfile reads blocks from disk (seekable formats), soxr
resamples them as a stream (identical to resampling the whole file at once), and a rolling buffer
keeps only the samples that windows still to come can need.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from bioclass.audio import AudioError, audio_info
from bioclass.audio.finite import replace_nonfinite
from bioclass.audio.header import promised_frames
from bioclass.audio.io import AudioInfo
from bioclass.core.errors import BioclassError
from bioclass.inference.arrays import InMemoryRecording

log = logging.getLogger(__name__)

# Samples decoded per read from disk (at the file's own rate): large enough to amortise calls,
# small enough that a block of a 96 kHz 8-channel file stays a few MB.
READ_FRAMES = 1 << 16
# Piece size when re-reading a damaged block: how much audio before the damage can be lost.
SALVAGE_FRAMES = 1024


@dataclass(frozen=True)
class WindowPlan:
    """Where windows fall in a recording, in samples at the model's rate.

    Window k covers [k * hop, k * hop + window). A recording of n samples gets
    1 window when n <= window, else 1 + ceil((n - window) / hop): the last window may run past
    the end and is zero-padded, as training pads short clips.
    """

    sample_rate: int
    window_samples: int
    hop_samples: int

    @classmethod
    def from_seconds(
        cls, sample_rate: int, window_seconds: float, hop_seconds: float
    ) -> WindowPlan:
        """Plan from seconds (rounded to whole samples)."""
        if hop_seconds <= 0:
            raise BioclassError(f"--hop must be positive, got {hop_seconds:g}")
        hop = int(round(hop_seconds * sample_rate))
        if hop < 1:
            raise BioclassError(f"--hop {hop_seconds:g} s is shorter than one sample")
        return cls(sample_rate, int(round(window_seconds * sample_rate)), hop)

    @property
    def hop_seconds(self) -> float:
        """The hop as scanned: rounded to whole samples."""
        return self.hop_samples / self.sample_rate

    def n_windows(self, n_samples: int) -> int:
        """Number of windows for a recording of `n_samples` samples (at least 1)."""
        if n_samples <= self.window_samples:
            return 1
        return 1 + math.ceil((n_samples - self.window_samples) / self.hop_samples)

    def starts(self, n_samples: int) -> np.ndarray:
        """(n_windows,) window start samples."""
        return np.arange(self.n_windows(n_samples), dtype=np.int64) * self.hop_samples

    def times(self, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
        """Window (start, end) times in seconds; ends are clipped to the recording's end."""
        starts = self.starts(n_samples)
        ends = np.minimum(starts + self.window_samples, n_samples)
        return starts / self.sample_rate, ends / self.sample_rate


def channel_streams(channels: str | int, n_channels: int, path: Path) -> list[int | None]:
    """The audio streams a file yields: None = the mono mix, or channel indices.

    Args:
        channels: 'mix', 'each' or a channel index.
        n_channels: channels in the file.
        path: for error messages.
    """
    if channels == "mix":
        return [None]
    if channels == "each":
        return list(range(n_channels))
    if not isinstance(channels, int) or channels < 0:
        raise BioclassError(f"--channels must be mix, each or a channel number, got {channels!r}")
    if channels >= n_channels:
        raise AudioError(f"{path}: has {n_channels} channel(s), channel {channels} asked for")
    return [channels]


class RecordingReader:
    """Sequential, resampled reads of a recording's streams, in bounded memory.

    `read(start, stop)` returns samples [start, stop) of every stream at the target rate, zeros
    past the end. Calls must not go backwards past what was already released (`start` never
    decreases); everything before `start` is dropped from the buffer.

    After the last sample is decoded, `n_samples` holds the true length (a truncated file yields
    fewer samples than its header promised; see `truncated`). Non-finite samples (NaN/Inf) are
    set to 0 as they are decoded, before mixing and resampling spread them, and counted in
    `n_nonfinite` (of `n_source_samples` decoded from the channels in use).
    """

    def __init__(
        self, path: Path | InMemoryRecording, sample_rate: int, channels: str | int
    ) -> None:
        if isinstance(path, InMemoryRecording):
            info = AudioInfo(path.samplerate, path.frames, path.channels, "FLOAT")
        else:
            info = audio_info(path)
        self.path = path
        self.source_rate = info.sample_rate
        self.sample_rate = sample_rate
        self.streams = channel_streams(channels, info.n_channels, path)
        self.expected_samples = int(round(info.n_frames * sample_rate / info.sample_rate))
        # libsndfile shortens a truncated WAV/AIFF to what is there; its header still says
        # how long the recording was meant to be.
        promised = None if isinstance(path, InMemoryRecording) else promised_frames(path)
        self.promised_frames = max(info.n_frames, promised or 0)
        self.expected_seconds = self.promised_frames / info.sample_rate
        self._file = path if isinstance(path, InMemoryRecording) else _open(path)
        self._resampler = (
            None
            if self.source_rate == sample_rate
            else soxr.ResampleStream(
                self.source_rate, sample_rate, len(self.streams), dtype="float32", quality="HQ"
            )
        )
        self._buffer = np.zeros((len(self.streams), 0), dtype=np.float32)
        self._buffer_start = 0  # sample index (target rate) of the buffer's first column
        # Blocks decoded since the last read, joined onto the buffer once, when a read needs
        # them: joining each block as it came copied the whole growing buffer every time, which
        # made a 64-window batch's audio cost twice its decoding (1.06 s against 0.55 s per
        # 10-minute FLAC, window by window).
        self._pending: list[np.ndarray] = []
        self._pending_samples = 0
        self._decoded_frames = 0
        self._mix_channel = self.streams[0] if len(self.streams) == 1 else None
        self.n_source_samples = 0
        self.n_nonfinite = 0
        self.finished = False
        self.n_samples: int | None = None
        self.decode_error: str | None = None

    def close(self) -> None:
        """Release the file handle."""
        self._file.close()

    def __enter__(self) -> RecordingReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def truncated(self) -> bool:
        """True when decoding stopped before the length the header announced."""
        return self.finished and self._decoded_frames < self.promised_frames

    @property
    def all_nonfinite(self) -> bool:
        """True when every sample decoded so far was NaN or Inf."""
        return self.n_source_samples > 0 and self.n_nonfinite == self.n_source_samples

    @property
    def decoded_seconds(self) -> float:
        """Seconds of audio actually decoded so far (at the file's own rate)."""
        return self._decoded_frames / self.source_rate

    def _pull(self) -> None:
        """Decode, mix/select and resample one more block onto the buffer."""
        try:
            data = self._file.read(READ_FRAMES, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            # Corrupt data mid-file: keep what was decoded, report the rest as lost.
            self.decode_error = str(exc).strip().splitlines()[0] if str(exc).strip() else "error"
            data = self._salvage()
        last = data.shape[0] < READ_FRAMES or self.decode_error is not None
        self._decoded_frames += data.shape[0]
        self.n_nonfinite += replace_nonfinite(data, self._mix_channel)
        self.n_source_samples += data.size if self._mix_channel is None else data.shape[0]
        if self.streams == [None] and data.shape[1] == 1:
            block = data  # a mono file is its own mix (x / 1 == x): no pass over the block
        elif self.streams == [None]:
            block = data.mean(axis=1, keepdims=True)  # (n, channels) -> (n, 1): the mono mix
        else:
            block = data[:, self.streams]  # (n, channels) -> (n, streams)
        if self._resampler is not None:
            block = self._resampler.resample_chunk(np.ascontiguousarray(block), last=last)
        block = np.ascontiguousarray(block.T, dtype=np.float32)  # (n, streams) -> (streams, n)
        self._pending.append(block)
        self._pending_samples += block.shape[1]
        if last:
            self.finished = True
            self.n_samples = self._buffered_end()

    def _buffered_end(self) -> int:
        """Sample index (target rate) one past the last decoded sample still held."""
        return self._buffer_start + self._buffer.shape[1] + self._pending_samples

    @property
    def buffered_samples(self) -> int:
        """Samples held in memory (target rate): what bounds the reader's memory."""
        return self._buffer.shape[1] + self._pending_samples

    def _join_pending(self) -> None:
        """Append the blocks decoded since the last read to the buffer, in one copy."""
        if self._pending:
            self._buffer = np.concatenate([self._buffer, *self._pending], axis=1)
            self._pending = []
            self._pending_samples = 0

    def _salvage(self) -> np.ndarray:
        """After a failed block read, re-read that block in small pieces up to the damage."""
        pieces = []
        try:
            self._file.seek(self._decoded_frames)
            while True:
                piece = self._file.read(SALVAGE_FRAMES, dtype="float32", always_2d=True)
                if piece.shape[0] == 0:
                    break
                pieces.append(piece)
        except (sf.LibsndfileError, RuntimeError):
            pass  # the damage itself: everything before it is kept
        if not pieces:
            return np.zeros((0, self._file.channels), dtype=np.float32)
        return np.concatenate(pieces)

    def available_until(self, stop: int) -> bool:
        """Decode until sample `stop` is buffered or the file ends; True if it is buffered."""
        while not self.finished and self._buffered_end() < stop:
            self._pull()
        return self._buffered_end() >= stop

    def skip_to(self, start: int) -> None:
        """Decode up to sample `start` and drop everything before it, in bounded memory: a
        span deep into a recording is read as if from the start (the resampler's state, the
        counts of damaged samples), without holding the audio before it."""
        while not self.finished and self._buffered_end() < start:
            self._pull()
            self._drop_before(start)
        self._drop_before(start)

    def _drop_before(self, start: int) -> None:
        self._join_pending()
        drop = min(start - self._buffer_start, self._buffer.shape[1])
        if drop > 0:
            self._buffer = self._buffer[:, drop:]
            self._buffer_start += drop

    def read(self, start: int, stop: int) -> np.ndarray:
        """(streams, stop - start) float32 samples [start, stop), zero-padded past the end."""
        if start < self._buffer_start:
            raise ValueError("RecordingReader reads must not go backwards")
        self.available_until(stop)
        self._join_pending()
        # Drop what no later read can need.
        drop = start - self._buffer_start
        if drop > 0:
            self._buffer = self._buffer[:, drop:]
            self._buffer_start = start
        out = self._buffer[:, : stop - start]
        if out.shape[1] < stop - start:
            out = np.pad(out, ((0, 0), (0, stop - start - out.shape[1])))
        return out

    def length(self) -> int | None:
        """The recording's length in target-rate samples, once known."""
        return self.n_samples


def _open(path: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(str(path))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{path}: cannot decode audio ({exc})") from None


def prefetch(items: Iterator, depth: int = 2) -> Iterator:
    """Run `items` in a background thread, `depth` ahead: decoding overlaps with inference.

    Exceptions raised while producing are re-raised in the consumer, in order.
    """
    done = object()
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put((done, None))
        except BaseException as exc:  # handed over to the consumer, which re-raises it
            q.put((done, exc))

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    try:
        while True:
            item, exc = q.get()
            if item is done:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        # Unblock a producer waiting on a full queue, then let it finish.
        while thread.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                thread.join(timeout=0.05)
