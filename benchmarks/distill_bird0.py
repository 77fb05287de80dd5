"""Distillation on Bengalese finch Bird0: a CNN10 teacher, and a student a quarter of its cost
trained alone and distilled from it, scored on the held-out test songs, with their scan speed.

The clips and the split by song file are the ablation's (`bird0.cut_clips`, seed 0) and so is
the teacher's recipe (its best row: balanced batches, SpecAugment, MixUp 0.4, EMA). The student
(`--student`, default `cnn10_half`) trains with the same recipe twice: alone, and with
`bioclass distill` from the teacher (`distill.weight`, `distill.temperature`), the training
songs' own audio added as unlabelled windows the teacher scores (`data.unlabelled`). Each model
is scored on the test songs' clips (`evaluate_model`: UAR, mAP, and the student's top-class
agreement with the teacher), then timed scanning one long recording made of test songs
(`bioclass scan --mode exact`, hop = window, 2 threads, whole processes; interleaved repeats,
medians, the scan's outputs and resume state removed between repeats).

    python benchmarks/distill_bird0.py [--iterations 800] [--out runs/distill_bird0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from ablation_bird0 import recipe_for
from bird0 import DATA, cut_clips

from bioclass.evaluation.evaluate import evaluate_model
from bioclass.recipe import recipe_from_dict
from bioclass.training.loop import train

TEACHER_SETTING = {"balanced": True, "specaugment": True, "mixup_alpha": 0.4, "ema": True}


def train_once(recipe: dict, run_dir: Path) -> float:
    """Train (or finish an interrupted run of) `recipe` into `run_dir`; the wall time spent
    (NaN for a run finished earlier: its best.json is written once training is over)."""
    if (run_dir / "best.json").exists():
        return float("nan")
    started = time.perf_counter()
    if (run_dir / "last.pt").exists():
        train(None, run_dir, device="cpu", resume=True)
    else:
        train(recipe_from_dict(recipe), run_dir, device="cpu")
    return time.perf_counter() - started


def scored(model: Path, csv: Path) -> tuple[dict, pd.DataFrame]:
    metrics, predictions, _ = evaluate_model(model, csv, split="test", device="cpu")
    return metrics, predictions


def long_recording(csv: Path, folder: Path, minutes: float) -> Path:
    """One recording of `minutes` made of the test songs end to end (looped)."""
    table = pd.read_csv(csv)
    songs = sorted(table.loc[table["split"] == "test", "file"].unique())
    pieces, total, rate = [], 0, None
    while total < minutes * 60 * (rate or 1) or rate is None:
        for song in songs:
            audio, rate = sf.read(song, dtype="float32", always_2d=True)
            pieces.append(audio.mean(axis=1))
            total += len(pieces[-1])
            if total >= minutes * 60 * rate:
                break
    path = folder / "test_songs_long.flac"
    sf.write(path, np.concatenate(pieces)[: int(minutes * 60 * rate)], rate)
    return path


def scan_rate(model: Path, audio: Path, work: Path, window: float) -> float:
    """Audio-seconds per wall second of one whole `bioclass scan` process."""
    out = work / "det.csv"
    for stale in work.glob("det*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    command = [sys.executable, "-m", "bioclass", "scan", str(audio), "--model", str(model)]
    command += ["--out", str(out), "--hop", str(window), "--mode", "exact"]
    command += ["--precision", "fp32", "-q"]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, capture_output=True)
    return sf.info(str(audio)).duration / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/distill_bird0"))
    parser.add_argument("--teacher", default="cnn10")
    parser.add_argument("--student", default="cnn10_half")
    parser.add_argument("--iterations", type=int, default=800)
    parser.add_argument("--weight", type=float, default=0.5)
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scan-minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    table = cut_clips(args.data.resolve(), args.seed)
    csv = args.out / "clips.csv"
    table.to_csv(csv, index=False)
    train_songs = sorted(table.loc[table["split"] == "train", "file"].unique())

    def recipe(model: str) -> dict:
        setting = argparse.Namespace(**{**vars(args), "model": model})
        return recipe_for(csv, TEACHER_SETTING, setting)

    teacher_dir = args.out / f"teacher_{args.teacher}"
    alone_dir = args.out / f"student_{args.student}_alone"
    distilled_dir = args.out / f"student_{args.student}_distilled"
    distilled = recipe(args.student)
    distilled["data"]["unlabelled"] = train_songs
    distilled["distill"] = {
        "teachers": [str((teacher_dir / "model.pt").resolve())],
        "weight": args.weight,
        "temperature": args.temperature,
    }
    runs = [
        ("teacher", args.teacher, teacher_dir, recipe(args.teacher)),
        ("student alone", args.student, alone_dir, recipe(args.student)),
        ("student distilled", args.student, distilled_dir, distilled),
    ]
    walls = {name: train_once(r, run_dir) for name, _, run_dir, r in runs}

    rows, top = [], {}
    for name, model, run_dir, _ in runs:
        metrics, predictions = scored(run_dir / "model.pt", csv)
        top[name] = predictions["predicted"].to_numpy()
        rows.append(
            {
                "model": f"{name} ({model})",
                "test_uar": metrics["uar"],
                "test_map": metrics["map"],
                "test_accuracy": metrics["accuracy"],
                "train_wall_s": round(walls[name]) if np.isfinite(walls[name]) else None,
            }
        )
    for row, (name, *_) in zip(rows, runs, strict=True):
        row["top_class_agreement_with_teacher"] = float(np.mean(top[name] == top["teacher"]))

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        audio = long_recording(csv, work, args.scan_minutes)
        load_before = os.getloadavg()
        rates: dict[str, list[float]] = {name: [] for name, *_ in runs}
        for _ in range(args.repeats):  # interleaved: each repeat times every model once
            for name, _, run_dir, _ in runs:
                rates[name].append(scan_rate(run_dir / "model.pt", audio, work, 0.2))
        load_after = os.getloadavg()
    for row, (name, *_) in zip(rows, runs, strict=True):
        row["scan_audio_s_per_s"] = float(np.median(rates[name]))
        row["scan_runs"] = ", ".join(f"{r:.0f}" for r in rates[name])
    frame = pd.DataFrame(rows)
    frame.to_csv(args.out / "results.csv", index=False)
    print(frame.to_markdown(index=False, floatfmt=".4f"))
    print(
        json.dumps(
            {
                "cpu_count": os.cpu_count(),
                "load_average_before": load_before,
                "load_average_after": load_after,
                "scan_minutes": args.scan_minutes,
            }
        )
    )


if __name__ == "__main__":
    main()
