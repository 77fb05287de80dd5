"""Where a scan's time goes at hop = window: each stage alone, then the whole scan, in one run.

One 10-minute 48 kHz FLAC (BirdNET's example soundscape, ../shared/data/soundscapes, looped into
a temporary folder), an untrained model (3 s windows at 16 kHz, 5 classes: speed does not
depend on the weights), hop 3 s, 2 threads. Stages, each timed on its own over the whole file:

    decode              libsndfile reads the FLAC in the scanner's blocks (float32)
    decode + resample   the scanner's RecordingReader, read a batch of 64 windows at a time as
                        the scanner reads it: decode, mono mix, soxr 48 -> 16 kHz
    windows + batches   cutting the resampled audio into batches of 64 windows (numpy)
    model only, batches the scanner's prepared model (BatchNorm folded, channels-last) on those
                        ready batches, one at a time on torch's 2 intra-op threads: log-mel
                        front end, trunk, head, activation
    model only, pieces  the same model as the scanner now runs it on a CPU: each batch cut into
                        pieces (`piece_windows`), scored side by side on single-threaded workers
    scan, in process    bioclass.scan.runner.scan in this process (default mode: exact at hop =
                        window; parts, detections CSV and manifest written)
    scan, whole process `bioclass scan` as a user runs it: start-up (Python, torch, bioclass),
                        the scan, the outputs
    start-up            `bioclass scan` of a 3 s file: what a whole process costs beyond the scan

Rows are interleaved over --repeats rounds, each scan into an emptied folder (no stored parts to
resume); medians. Printed: seconds per file and audio-seconds per second per row, and the two
ratios issue 15 asks about (scan / model only, in process and as a whole process).

    python benchmarks/scan_breakdown.py [--model cnn10|mobilenetv1|cnn10_half] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from bench_common import cpu_description, load_average, make_checkpoint, process_env, timed
from scan_e2e import loop_to_length

from bioclass.checkpoint import load_classifier
from bioclass.inference.batch_pool import ordered_map, single_threaded_ops
from bioclass.inference.models import prepare_for_inference
from bioclass.inference.score import piece_windows
from bioclass.inference.stream import READ_FRAMES, RecordingReader, WindowPlan
from bioclass.scan.options import ScanOptions
from bioclass.scan.runner import scan

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "../shared/data/soundscapes/birdnet_example_soundscape.flac"
RATE, WINDOW, BATCH, THREADS = 16000, 3.0, 64, 2


def decode_only(path: Path) -> int:
    frames = 0
    with sf.SoundFile(str(path)) as f:
        while block := len(f.read(READ_FRAMES, dtype="float32", always_2d=True)):
            frames += block
    return frames


def decode_resample(path: Path) -> np.ndarray:
    """The whole recording at 16 kHz through the scanner's reader, a batch at a time."""
    step = int(RATE * WINDOW) * BATCH
    pieces = []
    with RecordingReader(path, RATE, "mix") as reader:
        start = 0
        while reader.available_until(start + 1):
            pieces.append(reader.read(start, start + step)[0].copy())
            start += step
        n_samples = reader.n_samples
    return np.concatenate(pieces)[:n_samples]  # reads past the end are zero-padded


def batches(audio: np.ndarray) -> list[torch.Tensor]:
    step = int(RATE * WINDOW)
    n = -(-len(audio) // step)
    padded = np.zeros(n * step, dtype=np.float32)
    padded[: len(audio)] = audio
    windows = padded.reshape(n, step)
    return [torch.from_numpy(windows[i : i + BATCH].copy()) for i in range(0, n, BATCH)]


@torch.inference_mode()
def forward(model: torch.nn.Module, wave: torch.Tensor) -> torch.Tensor:
    spec = model.spectrogram(wave).contiguous(memory_format=torch.channels_last)
    return torch.softmax(model.classify(spec), dim=-1)


def model_only(model: torch.nn.Module, ready: list[torch.Tensor]) -> None:
    for wave in ready:
        forward(model, wave)


def model_in_pieces(model: torch.nn.Module, ready: list[torch.Tensor]) -> None:
    per = piece_windows(WindowPlan.from_seconds(RATE, WINDOW, WINDOW), n_streams=1)
    pieces = [piece for wave in ready for piece in wave.split(per)]
    with single_threaded_ops() as workers:
        for _ in ordered_map(lambda w: forward(model, w), pieces, workers):
            pass


def scan_in_process(recording: Path, ckpt: Path, folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    options = ScanOptions(out=folder / "det.csv", hop_seconds=WINDOW, threshold=0.0, merge=False)
    summary = scan([recording], [ckpt], options)
    if summary.n_scanned != 1:
        raise SystemExit("the in-process scan did not score its file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not SOURCE.is_file():
        raise SystemExit(f"{SOURCE} is missing: this benchmark needs the shared soundscapes")
    torch.set_num_threads(THREADS)
    env = process_env(OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    cpu = cpu_description()
    print(f"{cpu['cpu']}, {cpu['cores']} cores ({cpu['flags']}), torch {torch.__version__}")
    print(f"load average before: {load_average()}", flush=True)

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        recording = tmp / "soundscape_10min.flac"
        seconds = args.minutes * 60
        loop_to_length(SOURCE, recording, seconds)
        short = tmp / "short.flac"
        loop_to_length(SOURCE, short, WINDOW)
        ckpt = make_checkpoint(tmp / f"{args.model}.pt", args.model, WINDOW)
        model, _ = load_classifier(ckpt)
        prepare_for_inference(model, torch.device("cpu"))
        resampled = decode_resample(recording)
        ready = batches(resampled)
        audio_s = sum(len(b) for b in ready) * WINDOW
        bioclass = [sys.executable, "-m", "bioclass", "scan", "-q", "--model", str(ckpt)]

        def whole(source: Path, out: Path) -> Callable[[], object]:
            command = [*bioclass, str(source), "--out", str(out / "det.csv"), "--hop", "3"]
            return lambda: timed(command, env=env, fresh=out)

        rows: dict[str, Callable[[], object]] = {
            "decode": lambda: decode_only(recording),
            "decode + resample": lambda: decode_resample(recording),
            "windows + batches": lambda: batches(resampled),
            "model only, batches of 64 on 2 threads": lambda: model_only(model, ready),
            "model only, pieces side by side": lambda: model_in_pieces(model, ready),
            "scan, in process": lambda: scan_in_process(recording, ckpt, tmp / "in_process"),
            "scan, whole process": whole(recording, tmp / "whole"),
            "start-up (scan of a 3 s file)": whole(short, tmp / "short_out"),
        }
        walls: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeats):
            for name, run in rows.items():
                started = time.perf_counter()
                run()
                walls[name].append(time.perf_counter() - started)
        print(f"load average after: {load_average()}\n")

    median = {name: statistics.median(w) for name, w in walls.items()}
    scan_s = median["scan, in process"]
    print(
        f"{args.model}, {seconds:g} s of 48 kHz audio ({audio_s:g} s in whole windows), hop 3 s, "
        f"{THREADS} threads, medians of {args.repeats}\n"
    )
    print("| stage | seconds per file | audio-s per s | share of the in-process scan | runs (s) |")
    print("|---|---:|---:|---:|---|")
    for name, wall in median.items():
        share = f"{wall / scan_s:.0%}" if "whole" not in name and "start" not in name else ""
        rate = f"{seconds / wall:.1f}" if "start" not in name else ""
        runs = ", ".join(f"{w:.2f}" for w in walls[name])
        print(f"| {name} | {wall:.2f} | {rate} | {share} | {runs} |")
    model_rows = ("model only, batches of 64 on 2 threads", "model only, pieces side by side")
    model_s = min(median[name] for name in model_rows)
    print(f"model only: the faster of its two rows, {model_s:.2f} s")
    print(f"\nscan in process / model only: {model_s / scan_s:.0%} of the model-only rate")
    print(f"scan as a whole process / model only: {model_s / median['scan, whole process']:.0%}")
    stages = sum(median[s] for s in ("decode + resample", "windows + batches")) + model_s
    print(f"stages in sequence: {stages:.2f} s, the scan in process: {scan_s:.2f} s")


if __name__ == "__main__":
    main()
