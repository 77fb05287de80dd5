"""Scanner speed, side by side in one run: the model alone, a naive per-window loop, and
`bioclass scan`'s exact and fast modes; plus how far fast-mode and bf16 scores move.

All rows run CNN10 (5 classes) on 3 s windows at 16 kHz over the same synthetic recording,
interleaved over several repeats; medians are reported in audio-seconds of recording per
second of wall time. The scan rows include reading the (16 kHz WAV) file from disk.

    model only      forward of ready batches of 64 windows (hop = window), fp32, channels-last
    naive loop      one window at a time through the plain model, hop 1.5 s (and, for
                    reference, through the scanner's BN-folded channels-last model)
    exact           bioclass exact mode (batches of windows), hop 1.5 s / 3 s
    fast            bioclass fast mode (trunk once per block), hop 1.5 s / 3 s

Score agreement (fast vs exact, bf16 vs fp32) is measured with a trained model: the quickstart
checkpoint on the sample long recording (pass --trained; it is made by the README's demo).

    python benchmarks/scan_speed.py --trained runs/quickstart/model.pt [--minutes 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import torch

from bioclass.checkpoint import load_classifier
from bioclass.inference.models import prepare_for_inference
from bioclass.inference.score import score_file
from bioclass.inference.stream import WindowPlan
from bioclass.models import FrontendConfig, create_model
from bioclass.runtime.precision import cpu_has_native_bf16
from bioclass.synthetic.dataset import make_long_recording

RATE, WINDOW, BATCH = 16000, 3.0, 64


def model_only(model: torch.nn.Module, seconds: float) -> float:
    """Audio-seconds/s of the bare forward pass on ready batches (hop = window), channels-last."""
    n_windows = max(BATCH, int(seconds // WINDOW) // BATCH * BATCH)
    wave = torch.randn(BATCH, int(RATE * WINDOW)) * 0.05
    started = time.perf_counter()
    with torch.no_grad():
        for _ in range(n_windows // BATCH):
            spec = model.spectrogram(wave).contiguous(memory_format=torch.channels_last)
            model.classify(spec)
    return n_windows * WINDOW / (time.perf_counter() - started)


def naive_loop(model: torch.nn.Module, audio: np.ndarray, hop_s: float) -> float:
    """Audio-seconds/s of scoring one window at a time."""
    plan = WindowPlan.from_seconds(RATE, WINDOW, hop_s)
    starts = plan.starts(len(audio))
    padded = np.pad(audio, (0, plan.window_samples))
    started = time.perf_counter()
    with torch.no_grad():
        for s in starts:
            wave = torch.from_numpy(padded[s : s + plan.window_samples])[None]
            torch.softmax(model(wave), dim=-1)
    return len(audio) / RATE / (time.perf_counter() - started)


def scan_mode(
    model: torch.nn.Module, path: Path, hop_s: float, mode: str, precision: str = "fp32"
) -> tuple[float, np.ndarray]:
    """Audio-seconds/s of bioclass's scoring of a file, and the scores."""
    plan = WindowPlan.from_seconds(RATE, WINDOW, hop_s)
    started = time.perf_counter()
    result = score_file(
        path, [model], "softmax", plan, batch_size=BATCH, mode=mode, precision=precision
    )
    wall = time.perf_counter() - started
    return result.streams[0].duration_s / wall, result.streams[0].scores


def agreement(trained: Path, recording: Path, hop_s: float) -> pd.DataFrame:
    """How far fast-mode and bf16 scores are from exact fp32 scores, with a trained model.

    bf16 is compared on the first minute only: without native bf16 it is emulated and slow.
    """
    model, ckpt = load_classifier(trained)
    prepare_for_inference(model, torch.device("cpu"))
    rate = int(ckpt["frontend"]["sample_rate"])
    plan = WindowPlan.from_seconds(rate, float(ckpt["recipe"]["audio"]["clip_seconds"]), hop_s)
    act = ckpt["score_activation"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        minute = Path(tmp) / "minute.wav"
        audio, file_rate = sf.read(recording, dtype="float32")
        sf.write(minute, audio[: 60 * file_rate], file_rate, subtype="FLOAT")
        for path, what, mode, precision in (
            (recording, "whole file", "fast", "fp32"),
            (minute, "first minute", "exact", "bf16"),
            (minute, "first minute", "fast", "bf16"),
        ):
            exact = score_file(path, [model], act, plan, mode="exact").streams[0].scores
            other = (
                score_file(path, [model], act, plan, mode=mode, precision=precision)
                .streams[0]
                .scores
            )
            diff = np.abs(other - exact)
            rows.append(
                {
                    "vs exact fp32": f"{mode} {precision}",
                    "audio": what,
                    "windows": len(exact),
                    "max |diff|": diff.max(),
                    "mean |diff|": diff.mean(),
                    "same top class": np.mean(other.argmax(1) == exact.argmax(1)),
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--trained", type=Path, help="a trained checkpoint for score agreement")
    parser.add_argument(
        "--recording", type=Path, default=Path("sample_data/long/recording_20240501_053000.flac")
    )
    args = parser.parse_args()

    torch.manual_seed(0)
    plain = create_model("cnn10", 5, FrontendConfig(sample_rate=RATE, f_max=8000)).eval()
    # What the scanner runs: BatchNorms folded into the convolutions, channels-last.
    model = prepare_for_inference(copy.deepcopy(plain), torch.device("cpu"))
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "long.wav"
        make_long_recording(
            path, np.random.default_rng(0), args.minutes * 60, 8000, n_calls=int(args.minutes * 6)
        )
        audio, rate = sf.read(path, dtype="float32")
        import soxr

        audio = soxr.resample(audio, rate, RATE).astype(np.float32)
        sf.write(path, audio, RATE, subtype="PCM_16")  # 16 kHz: no resampling in the scan rows
        rows = [
            ("model only (batch 64, hop 3 s)", lambda: model_only(model, len(audio) / RATE)),
            ("naive per-window loop, hop 1.5 s", lambda: naive_loop(plain, audio, 1.5)),
            ("naive loop, scanner's model, hop 1.5 s", lambda: naive_loop(model, audio, 1.5)),
            ("bioclass exact, hop 1.5 s", lambda: scan_mode(model, path, 1.5, "exact")[0]),
            ("bioclass fast, hop 1.5 s", lambda: scan_mode(model, path, 1.5, "fast")[0]),
            ("bioclass exact, hop 3 s", lambda: scan_mode(model, path, 3.0, "exact")[0]),
            ("bioclass fast, hop 3 s", lambda: scan_mode(model, path, 3.0, "fast")[0]),
        ]
        for r in range(args.repeats):
            for name, run in rows:
                results.setdefault(name, []).append(run())
            print(f"repeat {r + 1}/{args.repeats} done", flush=True)
        # bf16 once, on one minute, beside fp32 on the same minute: without native bf16
        # (AVX512-BF16/AMX) it is emulated and far slower, so a longer run is not useful.
        minute = Path(tmp) / "minute.wav"
        sf.write(minute, audio[: 60 * RATE], RATE, subtype="PCM_16")
        bf16 = {p: scan_mode(model, minute, 1.5, "fast", p)[0] for p in ("fp32", "bf16")}
    median = {k: statistics.median(v) for k, v in results.items()}
    table = pd.DataFrame(
        {
            "measure": list(median),
            "median audio-s/s": list(median.values()),
            "runs": [", ".join(f"{x:.1f}" for x in results[k]) for k in median],
        }
    )
    print(
        f"\nCNN10, {WINDOW:g} s windows at {RATE} Hz, {args.minutes:g} min recording, "
        f"{torch.get_num_threads()} threads, native bf16: {cpu_has_native_bf16()}"
    )
    print(table.to_markdown(index=False, floatfmt=".1f"))
    naive = median["naive per-window loop, hop 1.5 s"]
    print(
        f"fast / naive loop at hop 1.5 s: {median['bioclass fast, hop 1.5 s'] / naive:.2f}x "
        f"(against the loop with the scanner's model: "
        f"{median['bioclass fast, hop 1.5 s'] / median[rows[2][0]]:.2f}x)"
    )
    print(
        f"fast at hop 3 s / model only: "
        f"{median['bioclass fast, hop 3 s'] / median['model only (batch 64, hop 3 s)']:.0%}"
    )
    print(
        f"fast at hop 1.5 s on one minute: fp32 {bf16['fp32']:.1f}, bf16 {bf16['bf16']:.1f} "
        f"audio-s/s ({bf16['bf16'] / bf16['fp32']:.2f}x)"
    )
    if args.trained:
        print(f"\nscore agreement: {args.trained} on {args.recording}")
        for hop in (0.75, 1.5):
            frame = agreement(args.trained, args.recording, hop)
            print(f"hop {hop} s")
            print(frame.to_markdown(index=False, floatfmt=".4f"))


if __name__ == "__main__":
    main()
