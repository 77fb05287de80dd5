"""Training from annotated recordings on Bengalese finch Bird0, scored on held-out songs.

The songs are split by file exactly as in `ablation_bird0.py` (`bird0.cut_clips`, seed 0): the
81 training and 27 devel songs' syllable boxes are the annotations (`data.annotations`; the
recipe's grouped split holds a quarter of those songs out for validation), and the 27 test songs
are never seen. The model trains on 0.2 s windows cut at random offsets (multi-hot targets,
BCE), not on syllable-centred clips; then `bioclass evaluate MODEL --annotations` scans the test
songs (exact mode, hop 0.02 s, as `scan_events.py bird0`) and reports event-level precision,
recall and F1 against their syllables.

It also measures what the on-demand window reads cost: windows/s of `read_window` against
slices of an int16 memory-mapped copy of the resampled songs, and the share of the training wall
time spent reading windows.

    python benchmarks/annotated_bird0.py --iterations 300 [--out runs/annotated_bird0] [--reuse]

It also reports the expected calibration error of the test songs' window scores before and
after the calibration fitted in training, and event precision, recall and F1 of the scan's event
rules (`--event-edges`, `--split-valleys`), each rule chosen on the validation songs and
reported on the test songs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
from bird0 import DATA, cut_clips

import bioclass.data.window_dataset as window_dataset
from bioclass.audio import audio_info
from bioclass.audio.io import resample
from bioclass.audio.window import read_window
from bioclass.evaluation.calibration import expected_calibration_error
from bioclass.evaluation.window_level import IGNORED, label_windows
from bioclass.recipe import recipe_from_dict
from bioclass.training.loop import train

SAMPLE_RATE = 16000
WINDOW_S = 0.2


def tables(data: Path, out: Path, seed: int) -> tuple[Path, Path, list[str]]:
    """Annotation CSVs of the training+devel songs and of the test songs, by the ablation's
    split of the files."""
    split = cut_clips(data, seed).groupby("group")["split"].first()
    syllables = pd.read_csv(data / "syllables.csv")
    syllables["file"] = [str(data / "audio" / f) for f in syllables["file"]]
    names = syllables["file"].map(lambda f: Path(f).name)
    test_songs = sorted(split[split == "test"].index)
    known = syllables[~names.isin(test_songs)]
    test = syllables[names.isin(test_songs)]
    columns = ["file", "start_time", "end_time", "label"]
    known[columns].to_csv(out / "train_songs.csv", index=False)
    test[columns].to_csv(out / "test_songs.csv", index=False)
    return out / "train_songs.csv", out / "test_songs.csv", test_songs


def recipe_for(table: Path, args: argparse.Namespace) -> dict:
    return {
        "seed": args.seed,
        "audio": {
            "sample_rate": SAMPLE_RATE,
            "clip_seconds": WINDOW_S,
            "n_fft": 512,
            "hop_length": 160,
            "n_mels": 64,
            "f_min": 50.0,
            "f_max": 8000.0,
        },
        "data": {"annotations": [str(table)], "val_fraction": 0.25},
        "model": {"name": args.model},
        "augment": {"specaugment": True, "mixup_alpha": 0.4, "time_width": 4, "freq_width": 8},
        "train": {
            "batch_size": 32,
            "iterations": args.iterations,
            "eval_every": max(1, args.iterations // 4),
            "ema_start": args.iterations // 4,
            "ema_decay": 0.995,
            # Validation windows a window apart (not half): the same songs, half the cost.
            "pooling_hop": 1.0,
        },
    }


def read_speed(data: Path, n: int = 2000) -> dict[str, float]:
    """Windows/s: on-demand reads of 0.2 s windows against slices of an int16 memory map."""
    files = sorted((data / "audio").glob("*.flac"))[:40]
    infos = [audio_info(f) for f in files]
    width = int(WINDOW_S * SAMPLE_RATE)
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(files), n)
    starts = [
        int(rng.integers(0, infos[k].n_frames * SAMPLE_RATE // infos[k].sample_rate - width))
        for k in picks
    ]
    began = time.perf_counter()
    for k, s in zip(picks, starts, strict=True):
        read_window(files[k], infos[k], SAMPLE_RATE, s, width)
    on_demand = n / (time.perf_counter() - began)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        maps = []
        for i, f in enumerate(files):
            wave, rate = sf.read(str(f), dtype="float32")
            y = resample(wave, rate, SAMPLE_RATE)
            m = np.memmap(Path(tmp) / f"{i}.i16", np.int16, "w+", shape=y.shape)
            m[:] = np.clip(np.round(y * 32767), -32768, 32767)
            m.flush()
            maps.append(np.memmap(Path(tmp) / f"{i}.i16", np.int16, "r"))
        build = time.perf_counter() - began
        began = time.perf_counter()
        for k, s in zip(picks, starts, strict=True):
            maps[k][s : s + width].astype(np.float32) / 32767
        mapped = n / (time.perf_counter() - began)
    seconds = sum(i.duration_seconds for i in infos)
    return {
        "on_demand_windows_per_s": on_demand,
        "memmap_windows_per_s": mapped,
        "memmap_build_s": build,
        "audio_s": seconds,
    }


def test_window_ece(run: Path, test_table: Path, hop: float) -> dict[str, float]:
    """ECE of the test songs' window scores, raw and calibrated.

    The calibrated scores are those `evaluate` scanned (`eval_scan/`); the raw ones come from
    the same scan with `--calibration off`. Each (window, class) pair is one prediction, right
    when a box of the class makes the window positive by `evaluate`'s rule (half the shorter of
    window and box); pairs `evaluate` leaves out (a box grazes the window) are left out here
    too. The ECE is bioclass's own (`expected_calibration_error`, 15 bins, sigmoid: pooled over
    classes), the one training reports on the validation windows.
    """
    raw_scan = run / "eval_scan_raw"
    boxes = pd.read_csv(test_table)
    command = [
        sys.executable, "-m", "bioclass", "scan", *sorted(boxes["file"].unique()),
        "--model", str(run / "model.pt"), "--hop", str(hop), "--mode", "exact",
        "--calibration", "off", "--scores", str(raw_scan / "scores.parquet"),
        "--out", str(raw_scan / "detections.csv"),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    matrices = {
        "raw": pd.read_parquet(raw_scan / "scores.parquet"),
        "calibrated": pd.read_parquet(run / "eval_scan" / "detections.scores.parquet"),
    }
    result = {}
    for name, matrix in matrices.items():
        classes = [
            c for c in matrix.columns if c not in ("file", "channel", "start_time", "end_time")
        ]
        files = {f: k for k, f in enumerate(sorted(set(matrix["file"]) | set(boxes["file"])))}
        truth = label_windows(
            matrix["file"].map(files).to_numpy(),
            matrix["start_time"].to_numpy(float),
            matrix["end_time"].to_numpy(float),
            boxes["file"].map(files).to_numpy(),
            boxes["start_time"].to_numpy(float),
            boxes["end_time"].to_numpy(float),
            boxes["label"].map(classes.index).to_numpy(),
            len(classes),
        )
        kept = truth != IGNORED
        scores = matrix[classes].to_numpy(np.float64)[kept].reshape(-1, 1)
        targets = truth[kept].reshape(-1, 1)
        result[f"ece_{name}"] = expected_calibration_error(scores, targets, "sigmoid")
        result["ece_pairs"] = int(kept.sum())
        result["ece_windows"] = len(matrix)
    return result


EDGES = ("window", "centre")
DEPTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)  # log-odds


def evaluate_json(source: Path, table: Path, *options: object) -> dict:
    command = [
        sys.executable, "-m", "bioclass", "evaluate", str(source), "--annotations", str(table),
        "--bootstrap", "0", "--out", "-", *map(str, options),
    ]  # fmt: skip
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout)


def event_rules(run: Path, train_table: Path, test_table: Path, hop: float) -> pd.DataFrame:
    """Event precision, recall and F1 of every event rule (`--event-edges` x `--split-valleys`),
    on the run's validation songs (where a rule is chosen) and on the test songs.

    The validation songs (the recipe's grouped split, `split.csv`) are scanned once like the test
    songs; each rule is then `evaluate` of the kept score matrix with the rule, no new scan.
    """
    split = pd.read_csv(run / "split.csv")
    val_songs = set(split.loc[split["split"] == "val", "file"])
    boxes = pd.read_csv(train_table)
    val_table = run / "val_songs.csv"
    boxes[boxes["file"].isin(val_songs)].to_csv(val_table, index=False)
    val_scan = run / "val_scan"
    command = [
        sys.executable, "-m", "bioclass", "evaluate", str(run / "model.pt"),
        "--annotations", str(val_table), "--hop", str(hop), "--mode", "exact",
        "--bootstrap", "0", "--scan-out", str(val_scan), "--out", "-",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    matrices = {
        "val": (val_scan / "detections.scores.parquet", val_table),
        "test": (run / "eval_scan" / "detections.scores.parquet", test_table),
    }
    rows = []
    for edges in EDGES:
        for depth in DEPTHS:
            row = {"event_edges": edges, "split_valleys": depth}
            for name, (matrix, table) in matrices.items():
                events = evaluate_json(
                    matrix, table, "--event-edges", edges, "--split-valleys", depth
                )["events"]["all"]
                for key in ("precision", "recall", "f1"):
                    row[f"{name}_{key}"] = events[key]
            rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=Path("runs/annotated_bird0"))
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hop", type=float, default=0.02)
    parser.add_argument(
        "--reuse", action="store_true", help="keep a finished run in --out instead of training"
    )
    args = parser.parse_args()
    data = args.data.resolve()
    args.out.mkdir(parents=True, exist_ok=True)

    speed = read_speed(data)
    print(json.dumps(speed, indent=1))

    train_table, test_table, test_songs = tables(data, args.out, args.seed)
    print(f"{len(test_songs)} held-out test songs")
    read_time = [0.0]
    real_read = window_dataset.read_window

    def timed_read(*a, **k):
        began = time.perf_counter()
        try:
            return real_read(*a, **k)
        finally:
            read_time[0] += time.perf_counter() - began

    window_dataset.read_window = timed_read
    run = args.out / f"{args.model}_{args.iterations}"
    wall = None
    if args.reuse and (run / "best.json").is_file():
        print(f"{run}: trained already, kept (--reuse): no training time measured")
    else:
        began = time.perf_counter()
        train(recipe_from_dict(recipe_for(train_table, args)), run, device="cpu")
        wall = time.perf_counter() - began
        print(f"training wall {wall:.0f} s, of which window reads {read_time[0]:.1f} s")
    window_dataset.read_window = real_read

    report = run / "eval" / "report.json"
    command = [
        sys.executable, "-m", "bioclass", "evaluate", str(run / "model.pt"),
        "--annotations", str(test_table), "--hop", str(args.hop), "--mode", "exact",
        "--bootstrap", "200", "--scan-out", str(run / "eval_scan"), "--out", str(report),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    events = pd.read_csv(report.with_suffix(".events.csv"))
    print(events.to_markdown(index=False, floatfmt=".2f"))
    ece = test_window_ece(run, test_table, args.hop)
    print(json.dumps(ece, indent=1))
    rules = event_rules(run, train_table, test_table, args.hop)
    rules.to_csv(run / "event_rules.csv", index=False)
    print(rules.to_markdown(index=False, floatfmt=".3f"))
    chosen = rules.loc[rules["val_f1"].idxmax()]
    best = json.loads((run / "best.json").read_text())
    summary = {
        "iterations": args.iterations,
        "best_iteration": best["iteration"],
        "weights": best["weights"],
        "val_map": best["value"],
        "train_wall_s": None if wall is None else round(wall),
        "read_s": round(read_time[0], 1),
        **speed,
        **ece,
        "event_rule_chosen_on_val": chosen.to_dict(),
        "events_all": events[events["label"] == "all"].iloc[0].to_dict(),
    }
    (run / "benchmark.json").write_text(json.dumps(summary, indent=1, default=float))
    print(json.dumps(summary, indent=1, default=float))


if __name__ == "__main__":
    main()
