"""One round of the annotation loop on synthetic soundscapes, measured on held-out recordings.

annotations -> `bioclass train` (data.annotations) -> `bioclass scan` of other recordings ->
`bioclass review --strategy stratified` -> verdicts (here filled by `--verdicts-from` an
annotation table of the target species, standing in for a listener) -> `bioclass train` again
with `data.reviewed` -> `bioclass evaluate --annotations` of both models on held-out recordings.

The first model knows two species (`harmonic`, `pulses`, from `multilabel_synthetic.py`'s
training recordings). The recordings it scans, and the held-out ones, also hold calls of two
species it never heard (`bark`, `trill`): its detections there are the false ones a review
marks `no`. The held-out recordings are never scanned for review, so what is counted there is
whether the retrained model learnt something general, not the reviewed clips by heart.

    python benchmarks/review_loop.py [--first runs/multilabel_synthetic] [--out runs/review_loop]

With `--first DIR` (a `multilabel_synthetic.py` output folder) its multi-label model (`arm_a`)
and training table are the first model and its annotations; otherwise they are made here.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from multilabel_synthetic import SAMPLE_RATE, SPECIES, WINDOW_S, recipe_for, soundscapes

from bioclass.recipe import recipe_from_dict
from bioclass.synthetic import make_multilabel_soundscape
from bioclass.training.loop import train

FOREIGN = ("bark", "trill")


def bioclass(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "bioclass", *map(str, args)], check=True)


def field_recordings(out: Path, name: str, seed: int, args: argparse.Namespace) -> Path:
    """Recordings with the two target species and two foreign ones; the full table, and a
    table of the target species only beside it (`targets.csv`)."""
    table = make_multilabel_soundscape(
        out / name,
        np.random.default_rng(seed),
        args.recordings,
        args.seconds,
        SAMPLE_RATE,
        args.events,
        species=(*SPECIES, *FOREIGN),
        overlap_probability=0.3,
    )
    table[table["label"].isin(SPECIES)].round(6).to_csv(out / name / "targets.csv", index=False)
    return out / name


def evaluate(model: Path, table: Path, out: Path, hop: float) -> dict:
    """Held-out scores of one model: window AP per class, event-level counts per class."""
    report = out / "report.json"
    bioclass(
        "evaluate", model, "--annotations", table, "--hop", hop, "--bootstrap", 200,
        "--scan-out", out / "scan", "--out", report,
    )  # fmt: skip
    windows = pd.read_csv(report.with_suffix(".windows.csv")).set_index("label")
    events = pd.read_csv(report.with_suffix(".events.csv")).set_index("label")
    detections = pd.read_csv(report.with_suffix(".detections.csv"))
    return {
        "ap": windows["ap"].to_dict(),
        "ap_low": windows["ap_low"].to_dict(),
        "ap_high": windows["ap_high"].to_dict(),
        "events": events[["boxes", "detections", "tp", "fp", "fn", "precision", "recall", "f1"]]
        .reset_index()
        .to_dict(orient="records"),
        "false_detections": int((detections["outcome"] == "false positive").sum()),
    }


def on_foreign_calls(report: Path, full_table: Path) -> int:
    """False detections of an evaluation that overlap a call of a foreign species."""
    detections = pd.read_csv(report.with_suffix(".detections.csv"))
    detections = detections[detections["outcome"] == "false positive"]
    boxes = pd.read_csv(full_table)
    boxes = boxes[boxes["label"].isin(FOREIGN)]
    count = 0
    for d in detections.itertuples(index=False):
        same = boxes[boxes["file"] == Path(d.file).name]
        count += bool(((same["start_time"] < d.end_time) & (same["end_time"] > d.start_time)).any())
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/review_loop"))
    parser.add_argument("--first", type=Path, help="a multilabel_synthetic.py output folder")
    parser.add_argument("--model", default="cnn6")
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recordings", type=int, default=4, help="per set: reviewed, held out")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--events", type=int, default=16)
    parser.add_argument("--per-class", type=int, default=30)
    parser.add_argument("--hop", type=float, default=0.25)
    # What multilabel_synthetic's soundscapes() reads, when the first model is made here.
    parser.add_argument("--train-recordings", type=int, default=6)
    parser.add_argument("--test-recordings", type=int, default=3)
    parser.add_argument("--overlap", type=float, default=0.5)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.first:
        train_table = args.first.resolve() / "train" / "annotations.csv"
        first = args.first.resolve() / "arm_a"
    else:
        train_table, _ = soundscapes(out, args)
        first = out / "first"
        recipe = recipe_from_dict(recipe_for({"annotations": [str(train_table)]}, args))
        train(recipe, first, device="cpu")
    reviewed = field_recordings(out, "to_review", args.seed + 101, args)
    held_out = field_recordings(out, "held_out", args.seed + 202, args)

    scan = out / "scan1" / "detections.csv"
    # Scanned a window apart: detections of different classes then never overlap, and the
    # review table stays free of overlapping rows that `data.reviewed` would have to reconcile.
    bioclass("scan", reviewed, "--model", first / "model.pt", "--out", scan, "--hop", WINDOW_S)
    review = out / "review"
    bioclass(
        "review", scan, "--out", review, "--strategy", "stratified",
        "--per-class", args.per_class, "--verdicts-from", reviewed / "targets.csv",
    )  # fmt: skip
    verdicts = pd.read_csv(review / "review.csv")
    counts = verdicts.groupby(["label", "verdict"]).size().to_dict()
    print(f"verdicts: {counts}")

    second = out / "second"
    data = {"annotations": [str(train_table)], "reviewed": [str(review / "review.csv")]}
    began = time.perf_counter()
    train(recipe_from_dict(recipe_for(data, args)), second, device="cpu")
    wall = time.perf_counter() - began

    summary = {
        "scan1_detections": len(pd.read_csv(scan)),
        "verdicts": {f"{k[0]}/{k[1]}": v for k, v in counts.items()},
        "second_train_wall_s": round(wall),
    }
    for name, run in (("before", first), ("after", second)):
        result = evaluate(
            run / "model.pt", held_out / "annotations.csv", out / f"eval_{name}", args.hop
        )
        result["on_foreign_calls"] = on_foreign_calls(
            out / f"eval_{name}" / "report.json", held_out / "annotations.csv"
        )
        summary[name] = result
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float))
    print("| held-out recordings | before review | after review |")
    for key in ("false_detections", "on_foreign_calls"):
        print(f"| {key} | {summary['before'][key]} | {summary['after'][key]} |")
    for label in [*SPECIES, "all"]:
        cells = [
            f"{summary[s]['ap'][label]:.3f} ({summary[s]['ap_low'][label]:.3f}–"
            f"{summary[s]['ap_high'][label]:.3f})"
            for s in ("before", "after")
        ]
        print(f"| AP {label} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
