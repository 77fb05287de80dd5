"""How many frames a file's container header promises, read from the header itself.

libsndfile corrects the length of a truncated WAV or AIFF to what the file holds, so its `frames`
cannot tell a complete file from one whose tail was cut off (a card pulled out mid-write, a copy
that stopped). The header's own data size can: compared with the frames actually decoded, it
says how much is missing.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

# A RIFF WAV whose size fields hold these was never finalised by its recorder (streamed, or
# stopped by a power cut before the header was rewritten): its size says nothing.
_PLACEHOLDER_SIZES = (0, 0xFFFFFFFF)
_MAX_CHUNKS = 64  # a header needs a few; more means the walk is lost in garbage


def promised_frames(path: str | Path) -> int | None:
    """Frames the header of a WAV (RIFF, RIFX, RF64/BW64) or AIFF/AIFC file announces.

    Returns None for other formats, for a header that does not say (placeholder sizes) and for
    one that cannot be parsed (libsndfile's own error is the better message then).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12:
                return None
            if head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
                return _wav_frames(f, head[:4])
            if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
                return _aiff_frames(f)
    except (OSError, struct.error):
        return None
    return None


def _chunks(f: BinaryIO, order: str):
    """(chunk id, size, offset of its data) of each chunk after the 12-byte container header."""
    position = 12
    for _ in range(_MAX_CHUNKS):
        f.seek(position)
        header = f.read(8)
        if len(header) < 8:
            return
        size = struct.unpack(order + "I", header[4:])[0]
        yield header[:4], size, position + 8
        position += 8 + size + (size & 1)  # chunks are padded to an even length


def _wav_frames(f: BinaryIO, kind: bytes) -> int | None:
    order = ">" if kind == b"RIFX" else "<"
    block_align = None
    big_data_size = None  # RF64: the real data size lives in the ds64 chunk
    for chunk, size, offset in _chunks(f, order):
        if chunk == b"ds64":
            f.seek(offset + 8)
            big_data_size = struct.unpack("<Q", f.read(8))[0]
        elif chunk == b"fmt ":
            f.seek(offset + 12)
            block_align = struct.unpack(order + "H", f.read(2))[0]
        elif chunk == b"data":
            if kind in (b"RF64", b"BW64") and size == 0xFFFFFFFF:
                size = big_data_size
            elif size in _PLACEHOLDER_SIZES:
                return None
            if not block_align or size is None:
                return None
            return size // block_align
    return None


def _aiff_frames(f: BinaryIO) -> int | None:
    for chunk, _size, offset in _chunks(f, ">"):
        if chunk == b"COMM":
            f.seek(offset + 2)  # after numChannels
            return struct.unpack(">I", f.read(4))[0]
    return None
