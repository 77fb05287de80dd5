"""Bengalese finch Bird0 (Koumura & Okanoya 2016) as labelled clips for the benchmarks.

Syllable clips are centred on the annotated syllables; `background` clips are cut from the
stretches that stay clear of every syllable (with a margin). Files are split train / devel / test
(60 / 20 / 20 %) by song, so no song is on two sides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[1] / "../shared/data/labelled/bengalese_finch_bird0"
CLIP_SECONDS = 0.2  # syllables last 22-140 ms (median 86 ms)
MARGIN_SECONDS = 0.02


def cut_clips(data: Path, seed: int, max_background_per_file: int = 12) -> pd.DataFrame:
    """Label table of syllable windows and background windows, with a split by song file."""
    import soundfile as sf

    syllables = pd.read_csv(data / "syllables.csv")
    rng = np.random.default_rng(seed)
    rows = []
    for file, song in syllables.groupby("file"):
        path = data / "audio" / file
        duration = sf.info(str(path)).duration
        centres = (song["start_time"] + song["end_time"]) / 2
        for centre, label in zip(centres, song["label"], strict=True):
            start = float(np.clip(centre - CLIP_SECONDS / 2, 0, duration - CLIP_SECONDS))
            rows.append((str(path), start, label, file))
        # Background: windows that stay clear of every syllable (with a margin).
        busy = song[["start_time", "end_time"]].to_numpy()
        candidates = np.arange(0, duration - CLIP_SECONDS, CLIP_SECONDS / 2)
        free = [
            s
            for s in candidates
            if not np.any(
                (busy[:, 0] - MARGIN_SECONDS < s + CLIP_SECONDS) & (busy[:, 1] + MARGIN_SECONDS > s)
            )
        ]
        for s in rng.permutation(free)[:max_background_per_file]:
            rows.append((str(path), float(s), "background", file))
    table = pd.DataFrame(rows, columns=["file", "start_time", "label", "group"])
    table["end_time"] = table["start_time"] + CLIP_SECONDS
    files = rng.permutation(sorted(table["group"].unique()))
    n = len(files)
    part = {f: "train" for f in files[: int(0.6 * n)]}
    part |= {f: "devel" for f in files[int(0.6 * n) : int(0.8 * n)]}
    part |= {f: "test" for f in files[int(0.8 * n) :]}
    table["split"] = table["group"].map(part)
    return table
