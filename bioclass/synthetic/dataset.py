"""Labelled synthetic clips and long recordings with known call times, written to disk.

``make_clip`` mixes one species call into ambience at a requested SNR (or returns ambience alone
for the background class); ``make_clip_dataset`` writes a folder of such clips with a label table
whose ``group`` column simulates recording sites; ``make_long_recording`` streams one long file
with calls at known, non-overlapping times and returns the truth table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from bioclass.synthetic.ambience import (
    AmbienceProfile,
    AmbienceStream,
    make_ambience,
    random_profile,
    vary_profile,
)
from bioclass.synthetic.calls import MAX_CALL_SECONDS, SPECIES, CallGenerator

BACKGROUND_LABEL = "background"
# Written audio peaks at most at -1 dBFS so 16-bit quantisation never clips.
HEADROOM_PEAK = 10.0 ** (-1.0 / 20.0)
# Short fade applied when a call has to be cut to fit, so the cut does not click.
_CUT_FADE_SECONDS = 0.01
# Silence kept between calls, and between a call and the file's start or end, in long recordings.
_MIN_CALL_GAP_SECONDS = 0.5
# Ambience level range (dBFS) of a long recording when no profile is given.
_LONG_RECORDING_LEVEL_RANGE_DB = (-62.0, -54.0)
_FORMATS = {"flac": "FLAC", "wav": "WAV"}


@dataclass(frozen=True)
class SynthesisedClip:
    """One synthetic clip with its parts, so tests can measure what was mixed.

    Attributes:
        audio: The clip (ambience plus scaled call), float32.
        background: The ambience alone, float32, same length as ``audio``.
        label: Species name or ``BACKGROUND_LABEL``.
        call_start_sample: First sample of the call inside the clip (None for background).
        call_end_sample: One past the last sample of the call (None for background).
    """

    audio: np.ndarray
    background: np.ndarray
    label: str
    call_start_sample: int | None = None
    call_end_sample: int | None = None


def _resolve_species(
    species: Mapping[str, CallGenerator] | Sequence[str] | None,
) -> dict[str, CallGenerator]:
    """Turn ``None``, a list of names, or a name -> generator mapping into a mapping."""
    if species is None:
        return dict(SPECIES)
    if isinstance(species, Mapping):
        return dict(species)
    unknown = [name for name in species if name not in SPECIES]
    if unknown:
        raise ValueError(f"unknown species {unknown}; known: {sorted(SPECIES)}")
    return {name: SPECIES[name] for name in species}


def _fit_call(call: np.ndarray, max_samples: int, sample_rate: int) -> np.ndarray:
    """Cut ``call`` to at most ``max_samples`` samples, fading out at the cut."""
    if len(call) <= max_samples:
        return call
    cut = call[:max_samples].copy()
    n_fade = min(int(_CUT_FADE_SECONDS * sample_rate), max_samples)
    cut[max_samples - n_fade :] *= np.linspace(1.0, 0.0, n_fade)
    return cut


def scale_to_snr(call: np.ndarray, background: np.ndarray, snr_db: float) -> np.ndarray:
    """Scale ``call`` so its power over its extent is ``snr_db`` above ``background``'s.

    Args:
        call: The call waveform.
        background: The ambience under the call (same length as ``call``).
        snr_db: Requested signal-to-noise ratio in dB.

    Returns:
        The scaled call (float64).
    """
    call_power = float(np.mean(np.square(call, dtype=np.float64)))
    background_power = float(np.mean(np.square(background, dtype=np.float64)))
    if call_power <= 0 or background_power <= 0:
        return np.asarray(call, dtype=np.float64)
    gain = np.sqrt(background_power / call_power * 10.0 ** (snr_db / 10.0))
    return gain * np.asarray(call, dtype=np.float64)


def synthesise_clip(
    rng: np.random.Generator,
    label: str,
    duration_seconds: float,
    sample_rate: int,
    snr_db: float,
    *,
    profile: AmbienceProfile | None = None,
    species: Mapping[str, CallGenerator] | None = None,
) -> SynthesisedClip:
    """Make one clip and keep its parts: ambience, plus a call at a random offset.

    Args:
        rng: Random generator.
        label: Species name, or ``BACKGROUND_LABEL`` for ambience only.
        duration_seconds: Clip length in seconds.
        sample_rate: Sample rate in Hz.
        snr_db: Call-to-ambience power ratio over the call's extent, in dB.
        profile: Ambience character; a random one is drawn when omitted.
        species: Species name -> call generator; defaults to ``SPECIES``.

    Returns:
        The clip and its parts.

    Raises:
        ValueError: If ``label`` is neither a known species nor the background label.
    """
    generators = _resolve_species(species)
    if label != BACKGROUND_LABEL and label not in generators:
        raise ValueError(f"unknown label {label!r}; known: {[BACKGROUND_LABEL, *generators]}")
    background = make_ambience(rng, duration_seconds, sample_rate, profile=profile)
    if label == BACKGROUND_LABEL:
        return SynthesisedClip(audio=background.copy(), background=background, label=label)
    call = _fit_call(generators[label](rng, sample_rate), len(background), sample_rate)
    start = int(rng.integers(0, len(background) - len(call) + 1))
    end = start + len(call)
    audio = background.astype(np.float64)
    audio[start:end] += scale_to_snr(call, background[start:end], snr_db)
    return SynthesisedClip(
        audio=audio.astype(np.float32),
        background=background,
        label=label,
        call_start_sample=start,
        call_end_sample=end,
    )


def make_clip(
    rng: np.random.Generator,
    label: str,
    duration_seconds: float,
    sample_rate: int,
    snr_db: float,
    *,
    profile: AmbienceProfile | None = None,
    species: Mapping[str, CallGenerator] | None = None,
) -> np.ndarray:
    """Make one labelled clip: ambience alone for the background label, else ambience + call.

    Args:
        rng: Random generator.
        label: Species name, or ``BACKGROUND_LABEL`` for ambience only.
        duration_seconds: Clip length in seconds.
        sample_rate: Sample rate in Hz.
        snr_db: Call-to-ambience power ratio over the call's extent, in dB.
        profile: Ambience character; a random one is drawn when omitted.
        species: Species name -> call generator; defaults to ``SPECIES``.

    Returns:
        float32 clip of ``round(duration_seconds * sample_rate)`` samples.
    """
    return synthesise_clip(
        rng, label, duration_seconds, sample_rate, snr_db, profile=profile, species=species
    ).audio


def _to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Quantise float audio to int16, scaling down only if the peak exceeds the headroom."""
    audio = np.asarray(audio, dtype=np.float64)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > HEADROOM_PEAK:
        audio = audio * (HEADROOM_PEAK / peak)
    # Explicit rounding (not libsndfile's float conversion) keeps files byte-reproducible.
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def _audio_format(fmt: str) -> str:
    """Map ``"flac"``/``"wav"`` to the soundfile format name."""
    try:
        return _FORMATS[fmt.lower()]
    except KeyError:
        raise ValueError(
            f"unsupported audio format {fmt!r}; use one of {sorted(_FORMATS)}"
        ) from None


def _assign_groups(
    rng: np.random.Generator, count: int, n_groups: int, group_weights: np.ndarray
) -> np.ndarray:
    """Assign ``count`` clips of one class to groups, covering as many groups as possible.

    The first clips go to distinct groups so every class appears in every group when it has
    enough clips; the rest follow the (uneven) site weights, as real deployments differ in size.
    """
    n_spread = min(count, n_groups)
    spread = rng.permutation(n_groups)[:n_spread]
    rest = rng.choice(n_groups, size=count - n_spread, p=group_weights)
    return rng.permutation(np.concatenate([spread, rest]).astype(int))


def make_clip_dataset(
    out_dir: str | Path,
    rng: np.random.Generator,
    counts: Mapping[str, int],
    sample_rate: int = 8000,
    duration_range: tuple[float, float] = (1.0, 2.5),
    snr_range_db: tuple[float, float] = (0.0, 20.0),
    n_groups: int = 6,
    fmt: str = "flac",
    *,
    species: Mapping[str, CallGenerator] | None = None,
) -> pd.DataFrame:
    """Write a folder of labelled synthetic clips and return the label table.

    Files go to ``out_dir/clips/<label>/<label>_<i>.<fmt>`` as 16-bit PCM mono; a clip whose
    peak would exceed -1 dBFS is scaled down as a whole (its SNR is unchanged). Each group is a
    simulated recording site with its own ambience (noise colour, level, gustiness, hum); every
    clip is drawn from a slightly varied copy of its site's ambience.

    Args:
        out_dir: Dataset root folder (created if missing).
        rng: Random generator.
        counts: Label -> number of clips; labels are species names or ``BACKGROUND_LABEL``.
        sample_rate: Sample rate in Hz.
        duration_range: Clip lengths are uniform in this range, in seconds.
        snr_range_db: Call SNRs are uniform in this range, in dB.
        n_groups: Number of simulated recording sites.
        fmt: ``"flac"`` or ``"wav"``.
        species: Species name -> call generator; defaults to ``SPECIES``.

    Returns:
        Table with columns ``file`` (POSIX path relative to ``out_dir``), ``label``, ``group``.
    """
    out_dir = Path(out_dir)
    audio_format = _audio_format(fmt)
    if n_groups < 1:
        raise ValueError("n_groups must be at least 1")
    known = [BACKGROUND_LABEL, *_resolve_species(species)]
    unknown = [label for label in counts if label not in known]
    if unknown:
        # Checked up front so a typo does not leave a half-written dataset behind.
        raise ValueError(f"unknown labels {unknown}; known: {known}")
    group_names = [f"site{g + 1:02d}" for g in range(n_groups)]
    site_profiles = [random_profile(rng) for _ in range(n_groups)]
    # Uneven site sizes, but no site is negligible.
    group_weights = rng.dirichlet(np.full(n_groups, 8.0))
    rows: list[dict[str, str]] = []
    for label, count in counts.items():
        label_dir = out_dir / "clips" / label
        label_dir.mkdir(parents=True, exist_ok=True)
        groups = _assign_groups(rng, int(count), n_groups, group_weights)
        for index, group in enumerate(groups):
            duration_seconds = float(rng.uniform(*duration_range))
            snr_db = float(rng.uniform(*snr_range_db))
            profile = vary_profile(rng, site_profiles[group])
            audio = make_clip(
                rng, label, duration_seconds, sample_rate, snr_db, profile=profile, species=species
            )
            relative = f"clips/{label}/{label}_{index:04d}.{fmt.lower()}"
            sf.write(
                out_dir / relative,
                _to_pcm16(audio),
                sample_rate,
                subtype="PCM_16",
                format=audio_format,
            )
            rows.append({"file": relative, "label": label, "group": group_names[group]})
    return pd.DataFrame(rows, columns=["file", "label", "group"])


def _call_starts(
    rng: np.random.Generator, n_total: int, n_calls: int, sample_rate: int
) -> np.ndarray:
    """Random call start samples that leave room for a maximum-length call plus a gap each."""
    reserve = int(round((MAX_CALL_SECONDS + _MIN_CALL_GAP_SECONDS) * sample_rate))
    edge = int(round(_MIN_CALL_GAP_SECONDS * sample_rate))
    free = n_total - n_calls * reserve - edge
    if free < 0:
        raise ValueError(
            f"{n_calls} calls do not fit in {n_total / sample_rate:.1f} s; "
            f"each needs {MAX_CALL_SECONDS + _MIN_CALL_GAP_SECONDS:.1f} s"
        )
    # Sorted uniform offsets + fixed reservations: random spacing that can never overlap.
    offsets = np.sort(rng.integers(0, free + 1, size=n_calls))
    return edge + offsets + np.arange(n_calls) * reserve


def make_long_recording(
    path: str | Path,
    rng: np.random.Generator,
    duration_seconds: float,
    sample_rate: int,
    n_calls: int,
    snr_range_db: tuple[float, float] = (5.0, 20.0),
    species: Mapping[str, CallGenerator] | Sequence[str] | None = None,
    *,
    profile: AmbienceProfile | None = None,
    chunk_seconds: float = 60.0,
) -> pd.DataFrame:
    """Stream one long recording with calls at known, non-overlapping times.

    Ambience is rendered and written chunk by chunk, so memory use does not grow with the
    recording's length. Species are used in equal numbers (in random order).

    Args:
        path: Output file; ``.flac`` or ``.wav`` (16-bit PCM mono).
        rng: Random generator.
        duration_seconds: Length of the recording in seconds.
        sample_rate: Sample rate in Hz.
        n_calls: Number of calls to insert.
        snr_range_db: Call SNRs (over each call's extent) are uniform in this range, in dB. A
            call that would peak above -1 dBFS at its drawn SNR is turned down to fit.
        species: Names from ``SPECIES`` or a name -> generator mapping; defaults to ``SPECIES``.
        profile: Ambience character; when omitted, a random one at -62 to -54 dBFS is drawn.
        chunk_seconds: Length of the chunks rendered and written at a time, in seconds.

    Returns:
        Truth table with columns ``start_time``, ``end_time`` (seconds; the call's extent) and
        ``label``, sorted by time.
    """
    path = Path(path)
    audio_format = _audio_format(path.suffix.lstrip("."))
    generators = _resolve_species(species)
    names = list(generators)
    n_total = int(round(duration_seconds * sample_rate))
    chunk_samples = max(int(round(chunk_seconds * sample_rate)), 1)
    max_call_samples = int(round(MAX_CALL_SECONDS * sample_rate))
    if profile is None:
        # Quieter than clip sites, leaving headroom for impulsive calls at high SNR.
        profile = random_profile(rng, level_range_db=_LONG_RECORDING_LEVEL_RANGE_DB)
    starts = _call_starts(rng, n_total, n_calls, sample_rate)
    labels = rng.permutation([names[k % len(names)] for k in range(n_calls)]) if names else []
    snrs_db = rng.uniform(*snr_range_db, size=n_calls)
    # Separate streams for ambience and calls: the layout above is fixed before either runs.
    ambience_rng, call_rng = (np.random.default_rng(seed) for seed in rng.integers(0, 2**63, 2))
    stream = AmbienceStream(ambience_rng, sample_rate, profile)

    # buffer holds ambience (plus mixed calls) from sample `written` onwards, not yet on disk.
    buffer = np.zeros(0)
    written = 0

    def extend(buffer: np.ndarray, buffer_start: int, needed: int) -> np.ndarray:
        """Render ambience until ``buffer`` holds ``needed`` samples (whole chunks if possible)."""
        while len(buffer) < needed:
            remaining = n_total - buffer_start - len(buffer)
            n_read = min(max(needed - len(buffer), chunk_samples), remaining)
            buffer = np.concatenate([buffer, stream.read(n_read)])
        return buffer

    rows: list[dict[str, float | str]] = []
    next_call = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with sf.SoundFile(
        path, "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format=audio_format
    ) as out_file:
        while written < n_total:
            chunk_end = min(written + chunk_samples, n_total)
            buffer = extend(buffer, written, chunk_end - written)
            while next_call < n_calls and starts[next_call] < chunk_end:
                label = str(labels[next_call])
                call = generators[label](call_rng, sample_rate)
                call = _fit_call(call, max_call_samples, sample_rate)
                start = int(starts[next_call])
                end = start + len(call)
                # A call may run past this chunk: render that much more ambience first, so its
                # SNR is measured over the call's whole extent.
                buffer = extend(buffer, written, end - written)
                segment = slice(start - written, end - written)
                scaled = scale_to_snr(call, buffer[segment], snrs_db[next_call])
                # The file cannot be rescaled once streamed, so an impulsive call that would clip
                # is turned down instead (its SNR then falls short of the drawn value).
                peak = float(np.max(np.abs(buffer[segment] + scaled)))
                if peak > HEADROOM_PEAK:
                    ambience_peak = float(np.max(np.abs(buffer[segment])))
                    call_peak = float(np.max(np.abs(scaled)))
                    scaled *= max(HEADROOM_PEAK - ambience_peak, 0.0) / call_peak
                buffer[segment] += scaled
                rows.append(
                    {
                        "start_time": start / sample_rate,
                        "end_time": end / sample_rate,
                        "label": label,
                    }
                )
                next_call += 1
            n_out = chunk_end - written
            pcm = np.round(np.clip(buffer[:n_out], -1.0, 1.0) * 32767.0).astype(np.int16)
            out_file.write(pcm)
            buffer = buffer[n_out:]
            written = chunk_end
    return pd.DataFrame(rows, columns=["start_time", "end_time", "label"])
