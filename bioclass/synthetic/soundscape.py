"""Soundscapes where calls of different species overlap in time, with their annotation tables.

``make_multilabel_recording`` writes one recording whose calls come alone or in pairs of two
different species sounding at once (the second call starts inside the first), and returns its
boxes; ``make_multilabel_soundscape`` writes a folder of such recordings with one CSV annotation
table for all of them and a Raven Pro selection table per recording in a ``raven/`` folder (apart,
so that reading the whole folder does not see every box twice): the two forms a field user would
hand to ``data.annotations`` or ``evaluate --annotations``.

Recordings are rendered whole in memory (unlike ``make_long_recording``): they are meant to be
minutes long, for benchmarks and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from bioclass.synthetic.ambience import AmbienceProfile, make_ambience, random_profile
from bioclass.synthetic.calls import MAX_CALL_SECONDS
from bioclass.synthetic.dataset import (
    _LONG_RECORDING_LEVEL_RANGE_DB,
    _MIN_CALL_GAP_SECONDS,
    _audio_format,
    _fit_call,
    _resolve_species,
    _to_pcm16,
    scale_to_snr,
)

# The second call of a pair starts within this share of the first call's length, so the two
# always overlap and a pair never needs more than (1 + this) maximum-length calls of room.
_MAX_PAIR_LAG_FRACTION = 0.6
_EVENT_SECONDS = MAX_CALL_SECONDS * (1.0 + _MAX_PAIR_LAG_FRACTION)
RAVEN_HEADER = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Annotation",
)


def _event_starts(
    rng: np.random.Generator, n_total: int, n_events: int, sample_rate: int
) -> np.ndarray:
    """Random event start samples, each leaving room for a pair of calls plus a gap."""
    reserve = int(round((_EVENT_SECONDS + _MIN_CALL_GAP_SECONDS) * sample_rate))
    edge = int(round(_MIN_CALL_GAP_SECONDS * sample_rate))
    free = n_total - n_events * reserve - edge
    if free < 0:
        raise ValueError(
            f"{n_events} events do not fit in {n_total / sample_rate:.1f} s; "
            f"each needs {_EVENT_SECONDS + _MIN_CALL_GAP_SECONDS:.1f} s"
        )
    offsets = np.sort(rng.integers(0, free + 1, size=n_events))
    return edge + offsets + np.arange(n_events) * reserve


def make_multilabel_recording(
    path: str | Path,
    rng: np.random.Generator,
    duration_seconds: float,
    sample_rate: int,
    n_events: int,
    species: Sequence[str] = ("harmonic", "pulses"),
    overlap_probability: float = 0.5,
    snr_range_db: tuple[float, float] = (5.0, 20.0),
    *,
    profile: AmbienceProfile | None = None,
) -> pd.DataFrame:
    """Write one recording whose calls are alone or overlap a call of another species.

    Each of the ``n_events`` events is, with probability ``overlap_probability``, a pair of
    calls of two different species (the second starting inside the first), else one call.
    Species take turns among the single calls; a pair draws its two species at random. Every
    call has its own SNR over its own extent, measured against the ambience alone. A recording
    whose peak would exceed -1 dBFS is scaled down as a whole (the SNRs are unchanged).

    Args:
        path: Output file, ``.flac`` or ``.wav`` (16-bit PCM mono).
        rng: Random generator.
        duration_seconds: Length in seconds.
        sample_rate: Sample rate in Hz.
        n_events: Number of events (single calls or overlapping pairs).
        species: Names from ``SPECIES``; pairs need at least two.
        overlap_probability: Chance that an event is an overlapping pair, in [0, 1].
        snr_range_db: Call SNRs are uniform in this range, in dB.
        profile: Ambience character; a random one at -62 to -54 dBFS when omitted.

    Returns:
        Boxes with columns ``start_time``, ``end_time`` (seconds, the call's extent) and
        ``label``, sorted by start.

    Raises:
        ValueError: For an unknown species, a probability outside [0, 1], pairs with fewer than
            two species, or more events than fit.
    """
    path = Path(path)
    audio_format = _audio_format(path.suffix.lstrip("."))
    generators = _resolve_species(list(species))
    names = list(generators)
    if not 0.0 <= overlap_probability <= 1.0:
        raise ValueError(f"overlap_probability must be in [0, 1], got {overlap_probability}")
    if overlap_probability > 0 and len(names) < 2:
        raise ValueError("overlapping calls need at least two species")
    if not names:
        raise ValueError("no species given")
    n_total = int(round(duration_seconds * sample_rate))
    starts = _event_starts(rng, n_total, n_events, sample_rate)
    if profile is None:
        profile = random_profile(rng, level_range_db=_LONG_RECORDING_LEVEL_RANGE_DB)
    audio = make_ambience(rng, duration_seconds, sample_rate, profile=profile).astype(np.float64)
    ambience = audio.copy()
    max_call = int(round(MAX_CALL_SECONDS * sample_rate))
    rows: list[dict[str, float | str]] = []
    single = 0
    for start in starts:
        if rng.random() < overlap_probability:
            labels = [str(name) for name in rng.choice(names, size=2, replace=False)]
        else:
            labels = [names[single % len(names)]]
            single += 1
        call_start = int(start)
        for k, label in enumerate(labels):
            call = _fit_call(generators[label](rng, sample_rate), max_call, sample_rate)
            if k == 1:
                lag = rng.uniform(0.1, _MAX_PAIR_LAG_FRACTION) * rows[-1]["length"]
                call_start = int(start) + int(lag)
            end = call_start + len(call)
            snr_db = float(rng.uniform(*snr_range_db))
            audio[call_start:end] += scale_to_snr(call, ambience[call_start:end], snr_db)
            rows.append(
                {
                    "start_time": call_start / sample_rate,
                    "end_time": end / sample_rate,
                    "label": label,
                    "length": len(call),
                }
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, _to_pcm16(audio), sample_rate, subtype="PCM_16", format=audio_format)
    boxes = pd.DataFrame(rows, columns=["start_time", "end_time", "label"])
    return boxes.sort_values("start_time", kind="stable").reset_index(drop=True)


def raven_table_text(boxes: pd.DataFrame, sample_rate: int) -> str:
    """A Raven Pro selection table of one recording's boxes (full band: the calls' bands are
    not tracked), one ``Spectrogram 1`` row per box."""
    lines = ["\t".join(RAVEN_HEADER)]
    for number, box in enumerate(boxes.itertuples(index=False), start=1):
        fields = [
            number,
            "Spectrogram 1",
            1,
            f"{box.start_time:.6f}",
            f"{box.end_time:.6f}",
            "0.0",
            f"{sample_rate / 2:.1f}",
            box.label,
        ]
        lines.append("\t".join(str(field) for field in fields))
    return "\n".join(lines) + "\n"


def make_multilabel_soundscape(
    out_dir: str | Path,
    rng: np.random.Generator,
    n_recordings: int,
    duration_seconds: float,
    sample_rate: int,
    n_events: int,
    species: Sequence[str] = ("harmonic", "pulses"),
    overlap_probability: float = 0.5,
    snr_range_db: tuple[float, float] = (5.0, 20.0),
    *,
    prefix: str = "soundscape",
    fmt: str = "flac",
) -> pd.DataFrame:
    """Write ``n_recordings`` recordings of overlapping calls and their annotation tables.

    Writes ``out_dir/<prefix>_<i>.<fmt>``, a Raven table per recording as
    ``out_dir/raven/<prefix>_<i>.Table.1.selections.txt`` (read with ``audio_root=out_dir``), and
    ``out_dir/annotations.csv`` with every box (``file`` relative to ``out_dir``). Each recording
    has its own ambience profile.

    Args:
        out_dir: Folder (created if missing).
        rng: Random generator.
        n_recordings: Number of recordings.
        duration_seconds, sample_rate, n_events, species, overlap_probability, snr_range_db: Of
            each recording, as for ``make_multilabel_recording``.
        prefix: Start of the file names.
        fmt: ``"flac"`` or ``"wav"``.

    Returns:
        The CSV table: ``file``, ``start_time``, ``end_time``, ``label``.
    """
    out_dir = Path(out_dir)
    (out_dir / "raven").mkdir(parents=True, exist_ok=True)
    tables = []
    for index in range(n_recordings):
        name = f"{prefix}_{index:03d}"
        boxes = make_multilabel_recording(
            out_dir / f"{name}.{fmt.lower()}",
            rng,
            duration_seconds,
            sample_rate,
            n_events,
            species,
            overlap_probability,
            snr_range_db,
        )
        (out_dir / "raven" / f"{name}.Table.1.selections.txt").write_text(
            raven_table_text(boxes, sample_rate), encoding="utf-8"
        )
        tables.append(boxes.assign(file=f"{name}.{fmt.lower()}"))
    columns = ["file", "start_time", "end_time", "label"]
    table = (
        pd.concat(tables, ignore_index=True)[columns] if tables else pd.DataFrame(columns=columns)
    )
    table.round(6).to_csv(out_dir / "annotations.csv", index=False, lineterminator="\n")
    return table
