"""Audio input: decoding any libsndfile format, channel handling, resampling, length fitting."""

from bioclass.audio.io import (
    AUDIO_EXTENSIONS,
    AudioError,
    Decoded,
    audio_info,
    decode_audio,
    fit_length,
    read_audio,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "AudioError",
    "Decoded",
    "audio_info",
    "decode_audio",
    "fit_length",
    "read_audio",
]
