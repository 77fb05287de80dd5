"""Reproduce the README's quickstart figures: run its two demo commands as a new user would
(train the quickstart recipe on sample_data/, scan the 4-minute recording) and print every
number the Quickstart section quotes, in the README's own table layouts.

    python benchmarks/quickstart_figures.py [--out runs/quickstart_figures]

Run it whenever training or scanning changes, and paste what it prints into the README (say
which torch version and machine: both are printed). Times are wall clock of the whole commands
(Python and PyTorch start-up included) and peak RSS is the largest resident size of the
command's process, as the operating system reports it; both depend on what else was running.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from bioclass.evaluation.truth import event_scores, read_truth
from bioclass.runtime.cpuinfo import cpu_model

REPO = Path(__file__).resolve().parents[1]
RECORDING = REPO / "sample_data/long/recording_20240501_053000.flac"
TRUTH = REPO / "sample_data/long/recording_20240501_053000.truth.csv"


def run(*args: object) -> tuple[float, float]:
    """Run `bioclass ARGS` from the repository root; (wall seconds, peak RSS in MiB)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "bioclass", *map(str, args)], cwd=REPO, check=True)
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss is the largest child so far (KiB on Linux): a new maximum is this command's;
    # none (nan) when an earlier, larger child hides it.
    return wall, peak / 1024 if peak > before else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs/quickstart_figures")
    args = parser.parse_args()
    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, as the quickstart makes one

    train_wall, train_rss = run("train", "recipes/quickstart.yaml", "--out", out)
    detections = out / "detections.csv"
    scan_args = ["scan", RECORDING.parent, "--model", out / "model.pt", "--out", detections]
    scan_wall, _ = run(*scan_args, "--format", "csv", "--format", "raven", "--truth", TRUTH)

    best = json.loads((out / "best.json").read_text(encoding="utf-8"))
    metrics = best["metrics"]
    load = os.getloadavg()[0]
    print(
        f"\n## machine: {cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"load average {load:.1f} at the end"
    )
    print(f"train: {train_wall:.0f} s wall, peak RSS {train_rss:.0f} MiB; scan: {scan_wall:.1f} s")
    print(
        f"best model: iteration {best['iteration']}, {best['weights']} weights "
        f"(validation {best['metric']} {100 * best['value']:.1f} %)"
    )
    calibration = best.get("calibration") or {}
    if calibration.get("method") == "platt":
        a, b = calibration["a"], calibration["b"]
        shared = len(set(a)) == 1 and len(set(b)) == 1
        where = "for every class" if shared else f"(first class of {len(a)})"
        print(f"calibration: platt (a = {a[0]:.3f}, b = {b[0]:.3f} {where})")
    elif calibration:
        print(f"calibration: {calibration.get('method')}")

    print("\n| class | clips | recall % | precision % | AP % |\n|---|---:|---:|---:|---:|")
    for name, row in metrics["per_class"].items():
        print(
            f"| {name} | {row['support']} | {100 * row['recall']:.1f} | "
            f"{100 * row['precision']:.1f} | {100 * row['ap']:.1f} |"
        )
    print(
        f"| **UAR / mAP** | {metrics['n_clips']} | **{100 * metrics['uar']:.1f}** | | "
        f"**{100 * metrics['map']:.1f}** |"
    )
    print(f"| accuracy | | {100 * metrics['accuracy']:.1f} | | |")

    found = pd.read_csv(detections, dtype={"label": str}, keep_default_na=False, na_values=[""])
    table = event_scores(found, read_truth(TRUTH))
    print("\n| label | truth | detections | matched | precision | recall | F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in table.itertuples(index=False):
        label = f"**{row.label}**" if row.label == "all" else row.label
        print(
            f"| {label} | {row.truth} | {row.detections} | {row.matched} | "
            f"{row.precision:.2f} | {row.recall:.2f} | {row.f1:.2f} |"
        )


if __name__ == "__main__":
    main()
