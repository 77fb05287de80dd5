"""Hard negatives on real foreign audio: a Bird0 model, one review round, false detections on
recordings the review never heard.

The first model is `annotated_bird0.py`'s (the same recipe, split and seed: Bengalese finch
syllables from the annotated Bird0 songs, 0.2 s windows), trained with `bioclass train`. It is
run over recordings where no Bengalese finch sings — the Jura field recorder's day
(`field_unlabeled/`) and the soundscapes (`soundscapes/`: forest, frogs, a toad, a drumming
grouse) — so every detection is false. Those recordings are split by file into two halves
(seeded; each source folder halved on its own, so both halves hold both kinds of audio):

- half A is scanned a window apart, and `bioclass review --strategy stratified` picks up to
  `--per-class` detections per class (by default every detection: a listener goes through
  all of them on an hour of audio); `--verdicts-from` fills every verdict `no` from an empty
  Audacity label file per recording of half A (what a listener who heard no finch there
  writes: "listened to, nothing found");
- the second model is the same recipe with `data.reviewed` = that review table (same seed,
  same iterations);
- both models scan both halves the same way (the scan's default hop, half a window) and the
  detections are counted: half B is the measure (never reviewed), half A is reported beside it;
- both models are evaluated on the 27 held-out Bird0 test songs (`bioclass evaluate
  --annotations`, exact mode, hop 0.02 s, as `annotated_bird0.py`): window mAP and UAR (the
  mean over classes of the window recall at the fitted thresholds) must stay within a point.

Every step is the command a user would type (subprocess). A step whose output is already there
is not run again, so an interrupted run continues where it stopped.

    python benchmarks/hard_negatives_field.py [--out runs/hard_negatives_field] [--iterations 300]
        [--per-class N]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml
from annotated_bird0 import DATA, recipe_for, tables

SHARED = DATA.parents[1]  # .../shared/data
FOREIGN = (SHARED / "field_unlabeled", SHARED / "soundscapes")


def bioclass(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "bioclass", *map(str, args)], check=True)


def halves(folders: tuple[Path, ...], seed: int) -> tuple[list[Path], list[Path]]:
    """The recordings of each folder, shuffled (seeded) and cut in two; the halves of all
    folders joined."""
    rng = np.random.default_rng(seed)
    first, second = [], []
    for folder in folders:
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".flac", ".wav"))
        order = rng.permutation(len(files))
        cut = (len(files) + 1) // 2
        first += [files[i] for i in sorted(order[:cut])]
        second += [files[i] for i in sorted(order[cut:])]
    return first, second


def duration(files: list[Path]) -> float:
    return round(sum(sf.info(str(f)).duration for f in files), 1)


def no_target_tables(files: list[Path], root: Path, out: Path) -> Path:
    """An empty Audacity label file per recording, in the recording's folder below `root`
    mirrored under `out`: each reads as "annotated whole, no box" (`--audio-root root`)."""
    for f in files:
        label = out / f.relative_to(root).with_suffix(".txt")
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text("")
    return out


def train_once(recipe: Path, run: Path, *sets: str) -> None:
    if (run / "best.json").is_file():
        print(f"{run}: trained already, kept")
        return
    bioclass(
        "train", recipe, "--out", run, "--device", "cpu", *[a for s in sets for a in ("--set", s)]
    )


def scan_once(files: list[Path], model: Path, out: Path, *options: object) -> pd.DataFrame:
    if not out.is_file():
        bioclass("scan", *files, "--model", model, "--out", out, "--device", "cpu", *options)
    return pd.read_csv(out)


def bird0_test(model: Path, table: Path, out: Path, hop: float) -> dict:
    """Window mAP, UAR and event F1 of a model on the held-out Bird0 test songs."""
    report = out / "report.json"
    if not report.is_file():
        bioclass(
            "evaluate", model, "--annotations", table, "--hop", hop, "--mode", "exact",
            "--bootstrap", 0, "--scan-out", out / "scan", "--out", report,
        )  # fmt: skip
    windows = pd.read_csv(report.with_suffix(".windows.csv")).set_index("label")
    events = pd.read_csv(report.with_suffix(".events.csv")).set_index("label")
    per_class = windows.drop(index="all")
    return {
        "window_map": float(per_class["ap"].mean()),
        "window_uar": float(per_class["recall"].mean()),
        "event_f1": float(events.loc["all", "f1"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/hard_negatives_field"))
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--split-seed", type=int, default=0, help="the halves of the recordings")
    parser.add_argument(
        "--per-class",
        type=int,
        default=1000,
        help="clips reviewed per class (default: more than there are detections, so every "
        "detection of half A is reviewed)",
    )
    parser.add_argument("--hop", type=float, default=0.02, help="of the Bird0 test scan")
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    train_table, test_table, _ = tables(args.data.resolve(), out, args.seed)
    recipe = out / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(recipe_for(train_table, args), sort_keys=False))
    first, second = out / "first", out / "second"
    train_once(recipe, first)

    half_a, half_b = halves(FOREIGN, args.split_seed)
    (out / "halves.json").write_text(
        json.dumps({"A": [str(f) for f in half_a], "B": [str(f) for f in half_b]}, indent=1)
    )

    # The review: half A scanned a window apart (detections never overlap), stratified picks,
    # every verdict `no` from the empty label files.
    window = float(yaml.safe_load(recipe.read_text())["audio"]["clip_seconds"])
    to_review = scan_once(
        half_a, first / "model.pt", out / "review_scan" / "detections.csv", "--hop", window
    )
    review = out / "review"
    if not (review / "review.csv").is_file():
        bioclass(
            "review", out / "review_scan" / "detections.csv", "--out", review,
            "--strategy", "stratified", "--per-class", args.per_class, "--seed", args.seed,
            "--verdicts-from", no_target_tables(half_a, SHARED, out / "no_target"),
            "--audio-root", SHARED,
        )  # fmt: skip
    verdicts = pd.read_csv(review / "review.csv")
    train_once(recipe, second, f"data.reviewed=[{review / 'review.csv'}]")

    summary: dict = {
        "recordings": {"A": len(half_a), "B": len(half_b)},
        "seconds": {"A": duration(half_a), "B": duration(half_b)},
        "review_scan_detections": len(to_review),
        "reviewed": len(verdicts),
        "verdicts": verdicts["verdict"].fillna("").value_counts().to_dict(),
        "reviewed_per_class": verdicts["label"].value_counts().sort_index().to_dict(),
    }
    for name, run in (("first", first), ("second", second)):
        result = {}
        for half, files in (("A", half_a), ("B", half_b)):
            found = scan_once(
                files, run / "model.pt", out / f"scan_{name}_{half}" / "detections.csv"
            )
            result[f"false_{half}"] = len(found)
            result[f"false_{half}_per_class"] = found["label"].value_counts().sort_index().to_dict()
            # Events whose best window reaches 0.5: what the scores say, whatever the thresholds.
            result[f"false_{half}_score_0.5"] = int((found["score"] >= 0.5).sum())
            result[f"false_{half}_per_recording"] = (
                found["file"].map(lambda f: Path(f).name).value_counts().to_dict()
            )
        result["bird0_test"] = bird0_test(
            run / "model.pt", test_table, out / f"bird0_{name}", args.hop
        )
        summary[name] = result
    for half in ("A", "B"):
        before, after = summary["first"][f"false_{half}"], summary["second"][f"false_{half}"]
        summary[f"drop_{half}"] = 1 - after / before if before else None
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float))
    print("| | first model | after one review round |")
    print("|---|---:|---:|")
    for half in ("B", "A"):
        for key, what in ((f"false_{half}", ""), (f"false_{half}_score_0.5", ", score >= 0.5")):
            print(f"| false detections, half {half}{what} | {summary['first'][key]} | "
                  f"{summary['second'][key]} |")  # fmt: skip
    for key in ("window_map", "window_uar", "event_f1"):
        cells = [f"{summary[s]['bird0_test'][key]:.3f}" for s in ("first", "second")]
        print(f"| Bird0 test {key} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
