"""A waveform held in memory, read like an audio file, so arrays are scored by the same streamed
reads, resampling and windows as recordings on disk (the Python API's `model.predict`)."""

from __future__ import annotations

import numpy as np

from bioclass.core.errors import BioclassError


class InMemoryRecording:
    """Samples at their own rate, offered with the part of `soundfile.SoundFile`'s interface that
    `RecordingReader` uses (`channels`, `samplerate`, `frames`, `read`, `seek`, `close`).

    Args:
        name: what the recording is called in scores and messages.
        samples: (samples,) mono, or (channels, samples) as librosa and torchaudio give them.
        sample_rate: the samples' rate in Hz.
    """

    def __init__(self, name: str, samples: object, sample_rate: int) -> None:
        self.name = name
        data = np.asarray(samples)
        if data.dtype.kind not in "fiu" or data.ndim not in (1, 2):
            raise BioclassError(
                f"{name}: expected a 1-D (samples,) or 2-D (channels, samples) array of numbers, "
                f"got {data.ndim}-D {data.dtype}"
            )
        if data.ndim == 2 and data.shape[0] > data.shape[1]:
            # (samples, channels) is soundfile's order; taking it for (channels, samples) would
            # score thousands of one-sample "channels" without a word.
            raise BioclassError(
                f"{name}: a {data.shape[0]} x {data.shape[1]} array looks like (samples, "
                "channels); give (channels, samples), e.g. array.T"
            )
        if data.size == 0:
            raise BioclassError(f"{name}: the array holds no samples")
        if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
            raise BioclassError(f"{name}: sample_rate must be a whole number of Hz")
        if sample_rate <= 0:
            raise BioclassError(f"{name}: sample_rate must be positive, got {sample_rate}")
        # (samples, channels) float32, as the reader decodes files
        self._data = np.ascontiguousarray(np.atleast_2d(data).T, dtype=np.float32)
        self.samplerate = int(sample_rate)
        self.frames, self.channels = self._data.shape
        self._position = 0

    def __str__(self) -> str:
        return self.name

    def read(self, frames: int, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """The next `frames` frames (fewer at the end), (frames, channels); a copy, since the
        reader zeroes non-finite samples in place."""
        block = self._data[self._position : self._position + frames].copy()
        self._position += block.shape[0]
        return block

    def seek(self, frame: int) -> None:
        self._position = frame

    def close(self) -> None:
        pass
