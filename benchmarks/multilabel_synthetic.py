"""Multi-label training from an annotation table against single-label clips, on synthetic
soundscapes where two species often call at once.

The sample-data generator (`bioclass.synthetic.make_multilabel_soundscape`) writes training
recordings and held-out recordings in which half the events are a `harmonic` and a `pulses`
call overlapping in time, with their annotation table. Two models, same recipe otherwise
(model, iterations, seed, augmentations, window), are trained on the same training recordings:

(a) from the table (`data.annotations`): windows at random offsets, multi-hot targets, BCE;
(b) from clips cut around each box, one window long and centred on it, each with the label of
    its box only (what a user without multi-label support would do: a clip that also holds the
    other species still says one), plus as many background clips cut where no box is as the
    commoner species has clips; softmax cross-entropy.

Both are scored with `bioclass evaluate MODEL --annotations` on the held-out recordings: per-class
AP at the window level (95 % bootstrap intervals over recordings), and also on the windows where
both species are present.

    python benchmarks/multilabel_synthetic.py [--iterations 120] [--out runs/multilabel_synthetic]
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
import soundfile as sf

from bioclass.recipe import recipe_from_dict
from bioclass.synthetic import make_multilabel_soundscape
from bioclass.training.loop import train

SAMPLE_RATE = 8000
WINDOW_S = 1.0
SPECIES = ("harmonic", "pulses")


def soundscapes(out: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """Training and held-out recordings (different seeds, different ambiences)."""
    train_rng, test_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(2)
    )
    common = {
        "duration_seconds": args.seconds,
        "sample_rate": SAMPLE_RATE,
        "n_events": args.events,
        "species": SPECIES,
        "overlap_probability": args.overlap,
    }
    make_multilabel_soundscape(out / "train", train_rng, args.train_recordings, **common)
    make_multilabel_soundscape(out / "test", test_rng, args.test_recordings, **common)
    return out / "train" / "annotations.csv", out / "test" / "annotations.csv"


def cut_clips(table: Path, out: Path, seed: int) -> Path:
    """One-window clips centred on each box, labelled with that box's label only, plus
    background clips from where no box is; `labels.csv` grouped by recording."""
    boxes = pd.read_csv(table)
    rng = np.random.default_rng(seed)
    width = int(WINDOW_S * SAMPLE_RATE)
    rows = []
    (out / "clips").mkdir(parents=True, exist_ok=True)
    n_background = int(boxes["label"].value_counts().max())
    free: list[tuple[str, int]] = []
    for file, own in boxes.groupby("file"):
        audio, rate = sf.read(str(table.parent / file), dtype="int16")
        assert rate == SAMPLE_RATE
        for i, box in enumerate(own.itertuples(index=False)):
            centre = int((box.start_time + box.end_time) / 2 * rate)
            start = min(max(centre - width // 2, 0), len(audio) - width)
            name = f"clips/{Path(file).stem}_{i:03d}_{box.label}.wav"
            sf.write(str(out / name), audio[start : start + width], rate, subtype="PCM_16")
            rows.append((name, box.label, Path(file).stem))
        busy = np.zeros(len(audio), bool)
        for box in own.itertuples(index=False):
            busy[int(box.start_time * rate) : int(box.end_time * rate)] = True
        starts = np.arange(0, len(audio) - width, width // 4)
        free += [(file, int(s)) for s in starts if not busy[s : s + width].any()]
    for k, pick in enumerate(
        rng.choice(len(free), size=min(n_background, len(free)), replace=False)
    ):
        file, start = free[pick]
        audio, rate = sf.read(str(table.parent / file), dtype="int16")
        name = f"clips/{Path(file).stem}_bg{k:03d}.wav"
        sf.write(str(out / name), audio[start : start + width], rate, subtype="PCM_16")
        rows.append((name, "background", Path(file).stem))
    labels = pd.DataFrame(rows, columns=["file", "label", "group"])
    labels.to_csv(out / "labels.csv", index=False)
    return out / "labels.csv"


def recipe_for(data: dict, args: argparse.Namespace) -> dict:
    """The one recipe both arms share; only `data` differs."""
    return {
        "seed": args.seed,
        "audio": {
            "sample_rate": SAMPLE_RATE,
            "clip_seconds": WINDOW_S,
            "n_fft": 256,
            "hop_length": 160,
            "n_mels": 32,
            "f_min": 50.0,
            "f_max": 4000.0,
        },
        "data": {**data, "val_fraction": 0.25},
        "model": {"name": args.model},
        "augment": {"specaugment": True, "mixup_alpha": 0.3},
        "train": {
            "batch_size": 32,
            "iterations": args.iterations,
            "eval_every": max(1, args.iterations // 4),
            "ema_start": args.iterations // 4,
            "ema_decay": 0.99,
        },
    }


def evaluate(run: Path, test_table: Path, hop: float) -> pd.DataFrame:
    """`bioclass evaluate --annotations` on the held-out recordings; the window-level table."""
    report = run / "eval" / "report.json"
    command = [
        sys.executable, "-m", "bioclass", "evaluate", str(run / "model.pt"),
        "--annotations", str(test_table), "--hop", str(hop), "--bootstrap", "200",
        "--scan-out", str(run / "eval_scan"), "--out", str(report),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    return pd.read_csv(report.with_suffix(".windows.csv"))


def both_present_ap(run: Path, test_table: Path) -> dict[str, float]:
    """Per-class AP on the held-out windows that hold a box of each species (by the same
    half-the-shorter overlap rule as the report), against all windows with neither."""
    from sklearn.metrics import average_precision_score

    scores = pd.read_parquet(run / "eval_scan" / "detections.scores.parquet")
    boxes = pd.read_csv(test_table)
    boxes["name"] = boxes["file"].map(lambda f: Path(f).name)
    scores["name"] = scores["file"].map(lambda f: Path(f).name)
    positive = {c: np.zeros(len(scores), bool) for c in SPECIES}
    for c in SPECIES:
        for box in boxes[boxes["label"] == c].itertuples(index=False):
            here = scores["name"].to_numpy() == box.name
            overlap = np.minimum(scores["end_time"], box.end_time) - np.maximum(
                scores["start_time"], box.start_time
            )
            need = 0.5 * min(WINDOW_S, box.end_time - box.start_time)
            positive[c] |= here & (overlap.to_numpy() >= need)
    both = positive[SPECIES[0]] & positive[SPECIES[1]]
    neither = ~(positive[SPECIES[0]] | positive[SPECIES[1]])
    keep = both | neither
    result = {"both_windows": int(both.sum()), "neither_windows": int(neither.sum())}
    for c in SPECIES:
        result[c] = float(average_precision_score(both[keep], scores[c].to_numpy()[keep]))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/multilabel_synthetic"))
    parser.add_argument("--model", default="cnn6")
    parser.add_argument("--iterations", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-recordings", type=int, default=6)
    parser.add_argument("--test-recordings", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--events", type=int, default=16)
    parser.add_argument("--overlap", type=float, default=0.5, help="share of overlapping pairs")
    parser.add_argument("--hop", type=float, default=0.25)
    args = parser.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    train_table, test_table = soundscapes(out, args)
    boxes = pd.read_csv(train_table)
    print(f"training boxes: {boxes['label'].value_counts().to_dict()}")
    labels = cut_clips(train_table, out / "single_label", args.seed)
    print(f"single-label clips: {pd.read_csv(labels)['label'].value_counts().to_dict()}")

    arms = {
        "multi-label (table)": {"annotations": [str(train_table)]},
        "single-label (clips)": {"labels_csv": str(labels)},
    }
    summary = {}
    for i, (arm, data) in enumerate(arms.items()):
        run = out / f"arm_{'ab'[i]}"
        began = time.perf_counter()
        train(recipe_from_dict(recipe_for(data, args)), run, device="cpu")
        wall = time.perf_counter() - began
        windows = evaluate(run, test_table, args.hop)
        summary[arm] = {
            "train_wall_s": round(wall),
            "best": json.loads((run / "best.json").read_text())["iteration"],
            "windows": windows.to_dict(orient="records"),
            "both_present_ap": both_present_ap(run, test_table),
        }
        print(arm, json.dumps(summary[arm], indent=1, default=float))
    (out / "benchmark.json").write_text(json.dumps(summary, indent=1, default=float))
    print("| class | " + " | ".join(f"{arm} AP" for arm in arms) + " |")
    for label in [*SPECIES, "all"]:
        cells = []
        for arm in arms:
            row = next(r for r in summary[arm]["windows"] if r["label"] == label)
            cells.append(f"{row['ap']:.3f} ({row['ap_low']:.3f}–{row['ap_high']:.3f})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    for label in SPECIES:
        cells = [f"{summary[arm]['both_present_ap'][label]:.3f}" for arm in arms]
        print(f"| {label}, both species present | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
