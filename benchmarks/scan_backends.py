"""`bioclass scan` in PyTorch and in onnxruntime, side by side in one run.

The same 10-minute recording (the BirdNET example soundscape, 48 kHz FLAC, looped; built in a
temporary folder) is scanned end to end (`bioclass.scan.runner.scan`: decoding, resampling to
16 kHz, windows, parts, outputs, manifest) by untrained CNN10 and MobileNetV1 models (3 classes;
speed does not depend on the weights) at hop = window (3 s) and hop = window / 2:

    torch exact        the checkpoint, `--mode exact`
    onnxruntime exact  its ONNX export (`bioclass export`), `--backend onnxruntime`
    torch fast         the checkpoint, `--mode fast` (a reference: onnxruntime has no fast mode)

Every row runs with the same number of threads (--threads, default 2: torch.set_num_threads,
which the onnxruntime backend follows), interleaved over --repeats repeats, each scan into a
fresh output folder (no parts to resume from); medians in audio-seconds per second of wall time.
The last repeat's score matrices of the two exact rows are compared, and whether their
detections CSVs (every window, threshold 0) are the same bytes.

    python benchmarks/scan_backends.py [--minutes 10] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch
from bench_common import cpu_description

from bioclass.checkpoint import atomic_save, model_checkpoint
from bioclass.export import export_model
from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import Recipe, recipe_to_dict
from bioclass.scan.options import ScanOptions
from bioclass.scan.runner import scan

SOUNDSCAPE = Path("/work/shared/data/soundscapes/birdnet_example_soundscape.flac")
MODELS = ("cnn10", "mobilenetv1")
CLASSES = ["a", "b", "c"]
RATE, WINDOW = 16000, 3.0
ROWS = (("torch", "exact"), ("onnxruntime", "exact"), ("torch", "fast"))


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def looped_recording(source: Path, seconds: float, path: Path) -> float:
    """`source` repeated until `seconds` long, written to `path` (FLAC at its own rate)."""
    audio, rate = sf.read(source, dtype="float32", always_2d=True)
    n = int(seconds * rate)
    reps = -(-n // len(audio))
    sf.write(path, np.tile(audio, (reps, 1))[:n], rate, subtype="PCM_16")
    return n / rate


def checkpoint(name: str, path: Path) -> Path:
    torch.manual_seed(0)
    frontend = FrontendConfig(sample_rate=RATE, f_max=8000)
    model = create_model(name, len(CLASSES), frontend).eval()
    recipe = recipe_to_dict(Recipe())
    recipe["audio"]["clip_seconds"] = WINDOW
    ckpt = model_checkpoint(
        model, name, CLASSES, frontend, recipe, None, use_ema=False, score_activation="sigmoid"
    )
    atomic_save(ckpt, path)
    return path


def timed_scan(
    recording: Path, model: Path, backend: str, mode: str, hop: float, folder: Path
) -> float:
    """Audio-seconds/s of one scan into an emptied `folder` (no parts, no outputs)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    options = ScanOptions(
        out=folder / "det.csv",
        hop_seconds=hop,
        mode=mode,
        backend=backend,
        threshold=0.0,
        merge=False,
        scores_path=folder / "scores.csv",
    )
    started = time.perf_counter()
    summary = scan([recording], [model], options)
    wall = time.perf_counter() - started
    if summary.n_scanned != 1:
        raise RuntimeError(f"{backend} {mode}: the recording was not scanned")
    return summary.audio_seconds / wall


def agreement(folders: dict[str, Path]) -> tuple[float, bool]:
    """Largest |onnxruntime - torch| window score (exact mode), and whether the detections
    CSVs are the same bytes."""
    torch_dir, onnx_dir = folders["torch exact"], folders["onnxruntime exact"]
    a = pd.read_csv(torch_dir / "scores.csv")[CLASSES].to_numpy()
    b = pd.read_csv(onnx_dir / "scores.csv")[CLASSES].to_numpy()
    same = (torch_dir / "det.csv").read_bytes() == (onnx_dir / "det.csv").read_bytes()
    return float(np.abs(a - b).max()), same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recording", type=Path, default=SOUNDSCAPE)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    logging.getLogger("bioclass").setLevel(logging.WARNING)
    import onnxruntime

    load_before = load_average()
    print(
        f"machine: {cpu_description()['cpu']}, {os.cpu_count()} cores; torch {torch.__version__}, "
        f"onnxruntime {onnxruntime.__version__}; {args.threads} threads; "
        f"load average before: {load_before}",
        flush=True,
    )
    results: dict[tuple[str, float, str], list[float]] = {}
    diffs: dict[tuple[str, float], tuple[float, bool]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        recording = tmp_path / "soundscape_looped.flac"
        seconds = looped_recording(args.recording, args.minutes * 60, recording)
        files = {}
        for name in MODELS:
            pt = checkpoint(name, tmp_path / f"{name}.pt")
            onnx_file = tmp_path / f"{name}.onnx"
            export_model(pt, "onnx", onnx_file)
            files[name] = {"torch": pt, "onnxruntime": onnx_file}
        for r in range(args.repeats):
            for name in MODELS:
                for hop in (WINDOW, WINDOW / 2):
                    folders = {}
                    for backend, mode in ROWS:
                        row = f"{backend} {mode}"
                        folders[row] = tmp_path / "runs" / row.replace(" ", "_")
                        rate = timed_scan(
                            recording, files[name][backend], backend, mode, hop, folders[row]
                        )
                        results.setdefault((name, hop, row), []).append(rate)
                    diffs[(name, hop)] = agreement(folders)
            print(f"repeat {r + 1}/{args.repeats} done (load average {load_average()})", flush=True)
    load_after = load_average()

    lines = []
    for name in MODELS:
        for hop in (WINDOW, WINDOW / 2):
            median = {row: statistics.median(results[(name, hop, row)]) for row in _rows()}
            diff, same = diffs[(name, hop)]
            for row in _rows():
                lines.append(
                    {
                        "model": name,
                        "hop": f"{hop:g} s",
                        "backend, mode": row,
                        "median audio-s/s": median[row],
                        "runs": ", ".join(f"{x:.1f}" for x in results[(name, hop, row)]),
                        "vs torch exact": (
                            f"{median[row] / median['torch exact']:.2f}x"
                            if row != "torch exact"
                            else ""
                        ),
                    }
                )
            print(
                f"{name} hop {hop:g} s: max |onnxruntime - torch| exact score {diff:.2g}; "
                f"detections CSV {'byte-identical' if same else 'differs'}"
            )
    print(
        f"\n{args.minutes:g} min recording ({seconds:g} s, {args.recording.name} looped), "
        f"{len(CLASSES)} classes, {WINDOW:g} s windows at {RATE} Hz, batch 64, "
        f"{args.threads} threads, {args.repeats} repeats; load average before {load_before}, "
        f"after {load_after}"
    )
    print(pd.DataFrame(lines).to_markdown(index=False, floatfmt=".1f"))


def _rows() -> list[str]:
    return [f"{backend} {mode}" for backend, mode in ROWS]


if __name__ == "__main__":
    main()
