"""bf16 against fp32 on real recordings: how far the scores move, how often the top class
changes, and the speed of each, in one process (no start-up); and with --int8 each trained
model's int8 export (`bioclass export --int8`: ONNX Runtime's static quantization, calibrated on
other recordings) against its float32 export and PyTorch.

Recordings: every FLAC in ../shared/data/soundscapes (7 field recordings, 24-48 kHz, 4.8 min
together), scanned as `bioclass scan` scans them (fast mode, hop 1.5 s, batch 64). Models: a
seeded untrained CNN10 (3 s at 16 kHz, 5 classes; its scores are nearly uniform, so its top
class is a hard test of agreement) and, with --trained, a trained checkpoint (e.g. the
quickstart model: `bioclass train recipes/quickstart.yaml --out runs/quickstart`).

    python benchmarks/precision.py [--trained runs/quickstart/model.pt ...] [--int8]
        [--calibration AUDIO ...]

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

SHARED = Path(__file__).resolve().parents[1] / "../shared/data"
SOUNDSCAPES = SHARED / "soundscapes"
# What int8 exports are calibrated on by default: recordings the soundscapes are not among.
CALIBRATION = [SHARED / "field_unlabeled", SHARED / "labelled/bengalese_finch_bird0/audio"]
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


def int8(
    checkpoint: Path, files: list[Path], folder: Path, repeats: int, calibration: list[str]
) -> None:
    """`bioclass export --int8` (static int8, calibrated and gated on `calibration`) against the
    float32 export and PyTorch, on every half-overlapping window of `files`, which the
    quantization never saw."""
    import soundfile as sf
    import soxr

    from bioclass.core.activation import activate
    from bioclass.core.errors import BioclassError
    from bioclass.export import export_model
    from bioclass.export.onnx_format import load_onnx

    fp32_path, int8_path = (
        folder / f"{checkpoint.stem}.onnx",
        folder / f"{checkpoint.stem}.int8.onnx",
    )
    summary = export_model(checkpoint, "onnx", fp32_path)
    rate, window = summary.metadata["sample_rate"], summary.metadata["window_samples"]
    started = time.perf_counter()
    try:
        check = export_model(checkpoint, "onnx", int8_path, calibration).int8
    except BioclassError as exc:
        print(f"\n{checkpoint}: int8 export refused: {exc}")
        return
    made_s = time.perf_counter() - started
    windows = []
    for path in files:
        audio, source_rate = sf.read(path, dtype="float32", always_2d=True)
        audio = soxr.resample(audio.mean(axis=1), source_rate, rate)
        for start in range(0, max(len(audio) - window, 0) + 1, window // 2):
            windows.append(audio[start : start + window])
    batch = np.stack(windows).astype(np.float32)
    model = prepare_for_inference(load_models([checkpoint]).models[0], torch.device("cpu"))
    runs = {"onnx fp32": load_onnx(fp32_path), "onnx int8": load_onnx(int8_path)}
    runs["torch fp32"] = lambda w: model(torch.from_numpy(w)).numpy()
    logits: dict[str, np.ndarray] = {}
    times: dict[str, list[float]] = {name: [] for name in runs}
    with torch.no_grad():
        for _ in range(repeats):
            for name, run in runs.items():
                started = time.perf_counter()
                logits[name] = np.concatenate(
                    [run(batch[i : i + 64]) for i in range(0, len(batch), 64)]
                )
                times[name].append(time.perf_counter() - started)
    ref, got = logits["onnx fp32"], logits["onnx int8"]
    agree = np.mean(got.argmax(1) == ref.argmax(1))
    activation = summary.metadata["activation"]
    diff = np.abs(
        activate(torch.from_numpy(got), activation) - activate(torch.from_numpy(ref), activation)
    ).numpy()
    seconds = len(batch) * window / rate
    speed = {name: seconds / statistics.median(t) for name, t in times.items()}
    print(
        f"\n{checkpoint} ({summary.metadata['model_name']}, {window / rate:g} s windows): "
        f"int8 export in {made_s:.0f} s; its own check on {check.windows} held-out "
        f"calibration windows: {100 * check.agreement:.2f} % same top class, {check.speedup:.2f}x"
    )
    print(
        f"  on the {len(batch)} soundscape windows: same top class {100 * agree:.2f} %, score "
        f"|diff| max {diff.max():.4f} mean {diff.mean():.5f}; window-audio-s/s: "
        + ", ".join(f"{name} {rate_:.1f}" for name, rate_ in speed.items())
        + f"; int8 / torch fp32 {speed['onnx int8'] / speed['torch fp32']:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--trained", type=Path, action="append", default=[], help="trained checkpoints (repeatable)"
    )
    parser.add_argument(
        "--calibration",
        action="append",
        default=[],
        help="audio the int8 exports are calibrated and checked on (repeatable; default: the "
        "shared field recordings and Bird0 songs)",
    )
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
        for trained in args.trained:
            drift(f"{trained} (trained)", trained, files, args.repeats, seconds)
        if args.int8:
            calibration = args.calibration or [str(p) for p in CALIBRATION if p.exists()]
            print(f"\nint8 exports calibrated on {', '.join(calibration)}")
            for trained in args.trained:
                int8(trained, files, folder, args.repeats, calibration)
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
