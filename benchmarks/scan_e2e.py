"""End-to-end `bioclass scan` on hour-long field recordings: throughput, peak memory, and where
the time goes; plus the peak memory of one 24-hour file.

The recordings are real soundscapes from ../shared/data/soundscapes (BirdNET's 48 kHz example,
OpenSoundscape's 32 kHz minute, ...) looped to one hour each and written as FLAC at their own
sample rate, so every scan decodes FLAC and resamples to the model's 16 kHz. The model is CNN10
(5 classes, 3 s windows, untrained weights: speed does not depend on them). Each scan runs as a
separate `bioclass scan` process; its peak RSS comes from the operating system (wait4).

    python benchmarks/scan_e2e.py [--hours-per-file 1] [--files 2] [--day]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import soundfile as sf
import torch

from bioclass.checkpoint import atomic_save, model_checkpoint
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import recipe_from_dict, recipe_to_dict

SOUNDSCAPES = Path(__file__).resolve().parents[1] / "../shared/data/soundscapes"


def make_checkpoint(path: Path) -> None:
    """An untrained CNN10 checkpoint (16 kHz, 3 s windows, 5 classes)."""
    recipe = recipe_to_dict(recipe_from_dict({"audio": {"f_max": 8000.0}}))
    torch.manual_seed(0)
    frontend = FrontendConfig(sample_rate=16000, f_max=8000.0)
    model = create_model("cnn10", 5, frontend)
    classes = ["background", "a", "b", "c", "d"]
    atomic_save(
        model_checkpoint(model, "cnn10", classes, frontend, recipe, None, False, "softmax"), path
    )


def loop_to_length(source: Path, target: Path, seconds: float) -> float:
    """Write `source` repeated to `seconds` as FLAC at its own rate, in bounded memory."""
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    total = int(seconds * rate)
    with sf.SoundFile(
        target, "w", samplerate=rate, channels=1, format="FLAC", subtype="PCM_16"
    ) as f:
        written = 0
        while written < total:
            piece = audio[: total - written]
            f.write(piece)
            written += len(piece)
    return rate


def run_scan(args: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS (MB) of a `bioclass scan` process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bioclass", "scan", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"scan failed:\n{err}")
    return wall, usage.ru_maxrss / 1024, err


def time_split(files: list[Path], model: Path, hop: float) -> dict[str, float]:
    """In-process scan with the model calls timed: how much of the wall time the model was
    computing. On a CPU, exact mode scores pieces side by side on several threads, so what
    counts is the union of the calls' intervals (time when at least one call was running)."""
    import threading

    import bioclass.inference.score as infer
    from bioclass.scan.runner import ScanOptions, scan

    intervals: list[tuple[float, float]] = []
    lock = threading.Lock()
    real = {name: getattr(infer, name) for name in ("_scores_exact", "_scores_fast")}

    def timing(fn):
        def timed(*a, **k):
            t0 = time.perf_counter()
            out = fn(*a, **k)
            with lock:
                intervals.append((t0, time.perf_counter()))
            return out

        return timed

    for name, fn in real.items():
        setattr(infer, name, timing(fn))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            scan(
                files, [model], ScanOptions(out=Path(tmp) / "d.csv", hop_seconds=hop, device="cpu")
            )
            wall = time.perf_counter() - started
    finally:
        for name, fn in real.items():
            setattr(infer, name, fn)
    busy, reached = 0.0, float("-inf")
    for t0, t1 in sorted(intervals):
        busy += max(0.0, t1 - max(t0, reached))
        reached = max(reached, t1)
    # Decoding + resampling alone, for reference (it overlaps the model in a scan).
    from bioclass.inference.stream import RecordingReader

    t0 = time.perf_counter()
    for f in files:
        with RecordingReader(f, 16000, "mix") as reader:
            start = 0
            while not (reader.finished and start >= (reader.n_samples or 0)):
                reader.read(start, start + 16000 * 60)
                start += 16000 * 60
    decode = time.perf_counter() - t0
    return {"wall_s": wall, "model_s": busy, "decode_alone_s": decode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours-per-file", type=float, default=1.0)
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--hop", type=float, default=3.0)
    parser.add_argument("--day", action="store_true", help="also scan one 24-hour file")
    parser.add_argument("--workdir", type=Path, help="keep the generated audio here")
    args = parser.parse_args()

    sources = [
        SOUNDSCAPES / "birdnet_example_soundscape.flac",
        SOUNDSCAPES / "opensoundscape_1min.flac",
        SOUNDSCAPES / "opensoundscape_great_plains_toad.flac",
    ]
    tmp = tempfile.TemporaryDirectory()
    work = args.workdir or Path(tmp.name)
    folder = work / "season"
    folder.mkdir(parents=True, exist_ok=True)
    model = work / "cnn10.pt"
    make_checkpoint(model)
    files = []
    for i in range(args.files):
        source = sources[i % len(sources)]
        target = folder / f"{source.stem}_20240501_{i:02d}0000.flac"
        if not target.exists():
            rate = loop_to_length(source, target, args.hours_per_file * 3600)
            print(f"wrote {target.name}: {args.hours_per_file:g} h at {rate} Hz", flush=True)
        files.append(target)
    hours = args.files * args.hours_per_file
    rows = []
    for mode in ("fast", "exact"):
        wall, rss, _ = run_scan(
            [
                str(folder),
                "--model",
                str(model),
                "--out",
                str(work / f"{mode}.csv"),
                "--hop",
                str(args.hop),
                "--mode",
                mode,
                "--device",
                "cpu",
            ]
        )
        rows.append(
            {
                "run": f"{args.files} x {args.hours_per_file:g} h FLAC, {mode}, hop {args.hop:g} s",
                "wall s": wall,
                "audio h / wall min": hours / (wall / 60),
                "peak RSS MB": rss,
            }
        )
        print(rows[-1], flush=True)
    split = time_split(files, model, args.hop)
    if args.day:
        day = work / "day_20240601_000000.flac"
        if not day.exists():
            loop_to_length(SOUNDSCAPES / "opensoundscape_1min.flac", day, 24 * 3600)
        wall, rss, _ = run_scan(
            [
                str(day),
                "--model",
                str(model),
                "--out",
                str(work / "day.csv"),
                "--hop",
                str(args.hop),
                "--device",
                "cpu",
            ]
        )
        rows.append(
            {
                "run": f"one 24 h FLAC (32 kHz), fast, hop {args.hop:g} s",
                "wall s": wall,
                "audio h / wall min": 24 / (wall / 60),
                "peak RSS MB": rss,
            }
        )
    print(f"\n{torch.get_num_threads()} threads")
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".1f"))
    outside = 1 - split["model_s"] / split["wall_s"]
    print(
        f"\nin-process scan of the {args.files} files (default mode): wall "
        f"{split['wall_s']:.1f} s, model computing {split['model_s']:.1f} s -> {outside:.0%} "
        "of the wall time outside the model "
        f"(decoding + resampling alone: {split['decode_alone_s']:.1f} s, overlapped with "
        f"the model by a reader thread)"
    )
    tmp.cleanup()


if __name__ == "__main__":
    main()
