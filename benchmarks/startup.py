"""Start-up cost of the command line, against the floor every PyTorch program pays.

Interleaved repeats (each round runs every command once, in turn), medians of the wall time of
whole processes:

    import torch    python -c "import torch"
    --help          python -m bioclass --help
    scan 3 s        python -m bioclass scan of one 3 s 16 kHz WAV with an untrained CNN10
                    (or --model), default options (precision auto), outputs in a temp folder

and the ratio scan / import torch (target <= 1.2) and --help (target < 0.5 s). The load average
is printed before and after: on a busy machine every figure grows, and not in proportion.

    python benchmarks/startup.py [--repeats 7] [--model runs/quickstart/model.pt]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from bench_common import cpu_description, load_average, make_checkpoint, timed

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", type=Path, help="checkpoint to scan with (default: CNN10)")
    args = parser.parse_args()
    # The bioclass of this checkout, whatever is installed.
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or make_checkpoint(folder / "cnn10.pt")
        wave = 0.05 * np.random.default_rng(0).standard_normal(3 * 16000)
        sf.write(folder / "three.wav", wave.astype(np.float32), 16000)
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            "bioclass --help": [sys.executable, "-m", "bioclass", "--help"],
            "bioclass scan, 3 s file": [
                sys.executable,
                "-m",
                "bioclass",
                "scan",
                str(folder / "three.wav"),
                "--model",
                str(model),
                "--out",
                str(folder / "out" / "d.csv"),
                "-q",
            ],
        }
        load_before = load_average()
        out = folder / "out"  # removed before each run: a scan would resume from its parts
        for command in commands.values():  # warm the file cache once
            timed(command, env, fresh=out)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeats):
            for name, command in commands.items():
                times[name].append(timed(command, env, fresh=out))
        load_after = load_average()
    median = {name: statistics.median(values) for name, values in times.items()}
    machine = cpu_description()
    print(f"CPU: {machine['cpu']} ({machine['cores']} cores; {machine['flags']})")
    print(f"load average (1, 5, 15 min): before {load_before}, after {load_after}")
    print(f"{args.repeats} interleaved repeats, medians of whole processes:\n")
    print("| command | median s | runs |")
    print("|---|---:|---|")
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {median[name]:.2f} | {runs} |")
    ratio = median["bioclass scan, 3 s file"] / median["import torch"]
    print(f"\nscan / import torch: {ratio:.2f}x (target <= 1.2)")
    print(f"--help: {median['bioclass --help']:.2f} s (target < 0.5)")


if __name__ == "__main__":
    main()
