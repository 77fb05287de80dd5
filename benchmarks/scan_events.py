"""Event-level precision/recall of `bioclass scan` against ground truth, on two kinds of audio.

1. Synthetic: a long recording from the project's generator (same species as sample_data/),
   calls inserted at known times over continuous ambience, scanned with the quickstart model.
2. Real: Bengalese finch Bird0 songs held out from training (the test files of
   `ablation_bird0.py`), scanned with a model trained on the other songs; truth = the annotated
   syllables of those songs.

A detection matches a truth event of the same label when they overlap in time (one-to-one,
greedy by overlap). Precision = matched detections / detections; recall = matched truth
events / truth events.

    python benchmarks/scan_events.py synthetic --model runs/quickstart/model.pt
    python benchmarks/scan_events.py bird0 --model runs/ablation_bird0/<setting>/model.pt \\
        --clips runs/ablation_bird0/clips.csv
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bioclass.evaluation.truth import event_scores
from bioclass.scan.runner import ScanOptions, scan
from bioclass.synthetic.dataset import make_long_recording


def run_scan(files: list[Path], model: Path, out: Path, **options) -> tuple[pd.DataFrame, float]:
    started = time.perf_counter()
    summary = scan(files, [model], ScanOptions(out=out, collect_events=True, **options))
    return summary.events, time.perf_counter() - started


def synthetic(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic_20240601_040000.flac"
        truth = make_long_recording(
            path,
            np.random.default_rng(args.seed),
            args.minutes * 60,
            8000,
            n_calls=args.minutes * 8,
        )
        truth["file"] = str(path)
        for hop in args.hops:
            for mode in args.modes:
                events, wall = run_scan(
                    [path],
                    args.model,
                    Path(tmp) / f"{mode}.csv",
                    hop_seconds=hop,
                    min_gap_s=args.min_gap,
                    mode=mode,
                )
                print(f"\nsynthetic {args.minutes} min, hop {hop} s, {mode}, {wall:.1f} s wall")
                print(event_scores(events, truth).to_markdown(index=False, floatfmt=".2f"))


def bird0(args: argparse.Namespace) -> None:
    clips = pd.read_csv(args.clips)
    test_files = sorted(clips.loc[clips["split"] == "test", "file"].unique())
    syllables = pd.read_csv(Path(args.data) / "syllables.csv")
    names = {Path(f).name for f in test_files}
    truth = syllables[syllables["file"].isin(names)].copy()
    with tempfile.TemporaryDirectory() as tmp:
        for hop in args.hops:
            for mode in args.modes:
                events, wall = run_scan(
                    [Path(f) for f in test_files],
                    args.model,
                    Path(tmp) / f"{mode}.csv",
                    hop_seconds=hop,
                    min_gap_s=args.min_gap,
                    mode=mode,
                )
                print(
                    f"\nBird0: {len(test_files)} held-out songs, {len(truth)} syllables, "
                    f"hop {hop} s, {mode}, {wall:.1f} s wall"
                )
                print(event_scores(events, truth).to_markdown(index=False, floatfmt=".2f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="which", required=True)
    s = sub.add_parser("synthetic")
    s.add_argument("--model", type=Path, required=True)
    s.add_argument("--minutes", type=int, default=20)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--hops", type=float, nargs="+", default=[0.75, 0.375])
    s.add_argument("--min-gap", type=float, default=0.0)
    s.add_argument("--modes", nargs="+", default=["fast", "exact"])
    b = sub.add_parser("bird0")
    b.add_argument("--model", type=Path, required=True)
    b.add_argument("--clips", type=Path, required=True)
    b.add_argument(
        "--data",
        default=str(
            Path(__file__).resolve().parents[1] / "../shared/data/labelled/bengalese_finch_bird0"
        ),
    )
    b.add_argument("--hops", type=float, nargs="+", default=[0.05, 0.02])
    b.add_argument("--min-gap", type=float, default=0.0)
    b.add_argument("--modes", nargs="+", default=["fast", "exact"])
    args = parser.parse_args()
    synthetic(args) if args.which == "synthetic" else bird0(args)


if __name__ == "__main__":
    main()
