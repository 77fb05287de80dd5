"""Regenerate the bundled synthetic ``sample_data/`` (clips, labels, one long recording).

Deterministic: the fixed seed makes every run write byte-identical files. Run from the
repository root:

    python scripts/make_sample_data.py
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

SEED = 20211
SAMPLE_RATE = 8000
# Imbalanced like a real field corpus: half background, one common and two rare species.
CLIP_COUNTS = {"background": 125, "harmonic": 56, "pulses": 36, "trill": 18, "bark": 14}
CLIP_DURATION_RANGE_SECONDS = (1.0, 2.5)
CLIP_SNR_RANGE_DB = (0.0, 20.0)
N_GROUPS = 6
LONG_NAME = "recording_20240501_053000"  # AudioMoth-style YYYYMMDD_HHMMSS name
LONG_DURATION_SECONDS = 240.0
LONG_N_CALLS = 30
LONG_SNR_RANGE_DB = (5.0, 20.0)


def _parse_args() -> argparse.Namespace:
    """Command-line options (the defaults reproduce the bundled data)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "sample_data", help="output folder")
    parser.add_argument("--seed", type=int, default=SEED, help="random seed")
    return parser.parse_args()


def main() -> None:
    """Write clips, labels.csv, the long recording and its truth table."""
    args = _parse_args()
    # Importable without installing the package, when run as a plain script from a checkout.
    sys.path.insert(0, str(REPO_ROOT))
    import numpy as np

    from bioclass.synthetic import make_clip_dataset, make_long_recording

    started = time.perf_counter()
    out_dir: Path = args.out
    out_dir.mkdir(parents=True, exist_ok=True)
    # Only the folders this script owns are cleared, so stale clips never linger.
    for owned in ("clips", "long"):
        if (out_dir / owned).is_dir():
            shutil.rmtree(out_dir / owned)

    clip_rng, long_rng = (
        np.random.default_rng(seed) for seed in np.random.SeedSequence(args.seed).spawn(2)
    )
    labels = make_clip_dataset(
        out_dir,
        clip_rng,
        CLIP_COUNTS,
        sample_rate=SAMPLE_RATE,
        duration_range=CLIP_DURATION_RANGE_SECONDS,
        snr_range_db=CLIP_SNR_RANGE_DB,
        n_groups=N_GROUPS,
        fmt="flac",
    )
    labels.to_csv(out_dir / "labels.csv", index=False, lineterminator="\n")

    long_dir = out_dir / "long"
    truth = make_long_recording(
        long_dir / f"{LONG_NAME}.flac",
        long_rng,
        LONG_DURATION_SECONDS,
        SAMPLE_RATE,
        LONG_N_CALLS,
        LONG_SNR_RANGE_DB,
    )
    truth.round(6).to_csv(
        long_dir / f"{LONG_NAME}.truth.csv", index=False, lineterminator="\n", float_format="%.6f"
    )

    elapsed_seconds = time.perf_counter() - started
    print(f"wrote {len(labels)} clips to {out_dir / 'clips'}")
    print(labels.groupby(["label", "group"]).size().unstack(fill_value=0).to_string())
    print(f"wrote {long_dir / LONG_NAME}.flac with {len(truth)} calls")
    print(f"done in {elapsed_seconds:.1f} s")


if __name__ == "__main__":
    main()
