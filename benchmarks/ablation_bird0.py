"""Ablation of the Pellegrini (2021) training tricks (its Table 3) on a real labelled set.

Bengalese finch Bird0 (Koumura & Okanoya 2016): syllable clips cut from the songs plus
`background` clips cut from the stretches between/around syllables; the split is grouped by song
file (train 60 % / devel 20 % / test 20 %). Each setting trains CNN10 with the same seed and
iterations; the best checkpoint is chosen by devel UAR, and UAR / mAP are reported on the test
files. The last row adds the EMA of weights to the full recipe (the paper's "w/o EMA" pair).

    python benchmarks/ablation_bird0.py [--train-songs 8 --out runs/ablation_bird0_8songs]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from bird0 import CLIP_SECONDS, cut_clips

from bioclass.evaluation.evaluate import evaluate_model
from bioclass.recipe import recipe_from_dict
from bioclass.training.loop import train

OFF = {"balanced": False, "specaugment": False, "mixup_alpha": 0.0, "ema": False}
SETTINGS = [
    ("no-bal, no-aug", OFF),
    ("bal, no-aug", OFF | {"balanced": True}),
    ("bal, specA", OFF | {"balanced": True, "specaugment": True}),
    ("bal, MixUp", OFF | {"balanced": True, "mixup_alpha": 0.4}),
    ("bal, specA+MixUp", OFF | {"balanced": True, "specaugment": True, "mixup_alpha": 0.4}),
    (
        "bal, specA+MixUp, +EMA",
        {"balanced": True, "specaugment": True, "mixup_alpha": 0.4, "ema": True},
    ),
]


def recipe_for(csv: Path, setting: dict, args: argparse.Namespace) -> dict:
    return {
        "seed": args.seed,
        "audio": {
            "sample_rate": 16000,
            "clip_seconds": CLIP_SECONDS,
            "n_fft": 512,
            "hop_length": 160,
            "n_mels": 64,
            "f_min": 50.0,
            "f_max": 8000.0,
        },
        "data": {"labels_csv": str(csv), "balanced": setting["balanced"]},
        "model": {"name": args.model},
        "augment": {
            "specaugment": setting["specaugment"],
            "mixup_alpha": setting["mixup_alpha"],
            "time_width": 4,
            "freq_width": 8,
        },
        "train": {
            "batch_size": 32,
            "lr": 1e-3,
            "iterations": args.iterations,
            "eval_every": max(1, args.iterations // 8),
            "ema": setting["ema"],
            "ema_decay": 0.995,
            "ema_start": args.iterations // 4,
            "metric": "uar",
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, default=Path("../shared/data/labelled/bengalese_finch_bird0")
    )
    parser.add_argument("--out", type=Path, default=Path("runs/ablation_bird0"))
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--train-songs", type=int, help="keep only this many training songs (a low-data variant)"
    )
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    table = cut_clips(args.data.resolve(), args.seed)
    if args.train_songs:
        songs = sorted(table.loc[table["split"] == "train", "group"].unique())
        keep = set(np.random.default_rng(args.seed).permutation(songs)[: args.train_songs])
        table = table[(table["split"] != "train") | table["group"].isin(keep)]
    csv = args.out / "clips.csv"
    table.to_csv(csv, index=False)
    counts = table.groupby(["split", "label"]).size().unstack(0)
    print(counts.to_string(), "\n")

    results = []
    for name, setting in SETTINGS:
        run_dir = args.out / name.replace(", ", "_").replace("+", "_")
        recipe = recipe_from_dict(recipe_for(csv, setting, args))
        started = time.perf_counter()
        result = train(recipe, run_dir, device="cpu", resume=(run_dir / "last.pt").exists())
        wall = time.perf_counter() - started
        ckpt = run_dir / "model.pt"
        metrics, _, _ = evaluate_model(ckpt, csv, split="test", device="cpu")
        results.append(
            {
                "setting": name,
                "weights": metrics["weights"],
                "test_map": metrics["map"],
                "test_uar": metrics["uar"],
                "devel_uar": result.best["value"],
                "best_iteration": result.best["iteration"],
                "wall_s": round(wall),
            }
        )
    frame = pd.DataFrame(results)
    frame.to_csv(args.out / "results.csv", index=False)
    print(frame.to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
