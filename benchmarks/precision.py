"""bf16 against fp32 on real recordings: how far the scores move, how often the top class
changes, and the speed of each, in one process (no start-up); and int8 (ONNX Runtime's dynamic
quantization of the exported model) against the exported fp32 model.

Recordings: every FLAC in ../shared/data/soundscapes (7 field recordings, 24-48 kHz, 4.8 min
together), scanned as `bioclass scan` scans them (fast mode, hop 1.5 s, batch 64). Models: a
seeded untrained CNN10 (3 s at 16 kHz, 5 classes; its scores are nearly uniform, so its top
class is a hard test of agreement) and, with --trained, a trained checkpoint (e.g. the
quickstart model: `bioclass train recipes/quickstart.yaml --out runs/quickstart`).

    python benchmarks/precision.py [--trained runs/quickstart/model.pt] [--int8]

int8 needs `pip install 'bioclass[export]'` (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from bench_common import cpu_description, load_average, make_checkpoint

from bioclass.inference.models import load_models, prepare_for_inference
from bioclass.inference.score import WindowOutput, score_file
from bioclass.inference.stream import WindowPlan
from bioclass.runtime.precision import cpu_bf16_support, resolve_precision

SOUNDSCAPES = Path(__file__).resolve().parents[1] / "../shared/data/soundscapes"
HOP = 1.5


def scores_and_time(
    checkpoint: Path, precision: str, files: list[Path]
) -> tuple[np.ndarray, float]:
    """All windows' scores of `files` stacked, and the seconds the scoring took."""
    loaded = load_models([checkpoint])
    model = prepare_for_inference(loaded.models[0], torch.device("cpu"))
    info = loaded.info
    plan = WindowPlan.from_seconds(info.sample_rate, info.window_seconds, HOP)
    output = WindowOutput.class_scores(loaded.score_maps(None))
    started = time.perf_counter()
    rows = []
    for path in files:
        result = score_file(path, [model], output, plan, precision=precision)
        rows.extend(s.scores for s in result.streams)
    return np.concatenate(rows), time.perf_counter() - started


def drift(name: str, checkpoint: Path, files: list[Path], repeats: int, seconds: float) -> None:
    times: dict[str, list[float]] = {"fp32": [], "bf16": []}
    scores: dict[str, np.ndarray] = {}
    for _ in range(repeats):
        for precision in times:  # interleaved
            scores[precision], wall = scores_and_time(checkpoint, precision, files)
            times[precision].append(wall)
    diff = np.abs(scores["bf16"] - scores["fp32"])
    agree = np.mean(scores["bf16"].argmax(1) == scores["fp32"].argmax(1))
    rate = {p: seconds / statistics.median(t) for p, t in times.items()}
    print(
        f"| {name} | {len(diff)} | {diff.max():.4f} | {diff.mean():.5f} | {100 * agree:.2f} % "
        f"| {rate['fp32']:.1f} | {rate['bf16']:.1f} ({rate['bf16'] / rate['fp32']:.2f}x) |"
    )


def int8(checkpoint: Path, files: list[Path], folder: Path, repeats: int) -> None:
    """ONNX Runtime: the exported fp32 model against its dynamic int8 quantization, on the
    exact-mode windows of `files` (hop 1.5 s)."""
    import onnxruntime as ort
    import soundfile as sf
    import soxr
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from bioclass.export import export_model

    fp32_path = folder / "model.onnx"
    summary = export_model(checkpoint, "onnx", fp32_path)
    rate, window = summary.metadata["sample_rate"], summary.metadata["window_samples"]
    int8_path = folder / "model.int8.onnx"
    quantize_dynamic(fp32_path, int8_path, weight_type=QuantType.QInt8)
    windows = []
    hop = int(HOP * rate)
    for path in files:
        audio, source_rate = sf.read(path, dtype="float32", always_2d=True)
        audio = soxr.resample(audio.mean(axis=1), source_rate, rate)
        for start in range(0, max(len(audio) - window, 0) + 1, hop):
            windows.append(audio[start : start + window])
    batch = np.stack(windows).astype(np.float32)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    sessions = {
        "fp32": ort.InferenceSession(str(fp32_path), options, providers=["CPUExecutionProvider"]),
        "int8": ort.InferenceSession(str(int8_path), options, providers=["CPUExecutionProvider"]),
    }
    logits: dict[str, np.ndarray] = {}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(repeats):
        for name, session in sessions.items():
            input_name = session.get_inputs()[0].name
            started = time.perf_counter()
            logits[name] = np.concatenate(
                [
                    session.run(None, {input_name: batch[i : i + 64]})[0]
                    for i in range(0, len(batch), 64)
                ]
            )
            times[name].append(time.perf_counter() - started)
    agree = np.mean(logits["int8"].argmax(1) == logits["fp32"].argmax(1))
    seconds = len(batch) * window / rate
    speed = {name: seconds / statistics.median(t) for name, t in times.items()}
    print(
        f"\nint8 (ONNX Runtime dynamic quantization, QInt8 weights), {len(batch)} windows: "
        f"fp32 {speed['fp32']:.1f} window-audio-s/s, int8 {speed['int8']:.1f} "
        f"({speed['int8'] / speed['fp32']:.2f}x); top class agrees on {100 * agree:.2f} %; "
        f"max |logit diff| {np.abs(logits['int8'] - logits['fp32']).max():.3f}; "
        f"files {fp32_path.stat().st_size / 1e6:.1f} MB -> {int8_path.stat().st_size / 1e6:.1f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trained", type=Path, help="a trained checkpoint to compare too")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--int8", action="store_true", help="also try ONNX Runtime int8")
    args = parser.parse_args()
    import soundfile as sf

    files = sorted(SOUNDSCAPES.glob("*.flac"))
    seconds = sum(sf.info(f).duration for f in files)
    machine = cpu_description()
    print(f"CPU: {machine['cpu']} ({machine['cores']} cores; flags: {machine['flags']})")
    print(f"native bf16: {cpu_bf16_support()}; {torch.get_num_threads()} threads")
    print(f"auto here: {resolve_precision(torch.device('cpu'), 'auto').describe()}")
    print(f"load average before: {load_average()}")
    print(
        f"{len(files)} recordings, {seconds / 60:.1f} min, fast mode, hop {HOP} s; medians of "
        f"{args.repeats} interleaved repeats (audio-s/s, scoring only):\n"
    )
    print("| model | windows | max \\|diff\\| | mean \\|diff\\| | same top class | fp32 | bf16 |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cnn10 = make_checkpoint(folder / "cnn10.pt")
        drift("CNN10, seeded untrained, 16 kHz", cnn10, files, args.repeats, seconds)
        if args.trained:
            drift(f"{args.trained} (trained)", args.trained, files, args.repeats, seconds)
        if args.int8:
            int8(cnn10, files, folder, args.repeats)
            if args.trained:
                int8(args.trained, files, folder, args.repeats)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
