"""Start-up cost of the command line, against the floor every PyTorch program pays.

Interleaved repeats (each round runs every command once, in turn), medians of the wall time of
whole processes:

    import torch    python -c "import torch"
    no teardown     python -c "import os, torch; os._exit(0)": the same without the
                    interpreter's teardown, which the bioclass executable skips
    --help          python -m bioclass --help
    scan 3 s        python -m bioclass scan of one 3 s 16 kHz WAV with an untrained CNN10
                    (or --model), default options (precision auto), outputs in a temp folder

and the ratio scan / import torch (target <= 1.2) and --help (target < 0.5 s); then where a
scan's start-up goes, timed step by step in one fresh process per repeat (PHASES). The load
average is printed before and after: on a busy machine every figure grows, not in proportion.

    python benchmarks/startup.py [--repeats 7] [--model runs/quickstart/model.pt]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from bench_common import cpu_description, load_average, make_checkpoint, process_env, timed

REPO = Path(__file__).resolve().parents[1]

# The steps of a scan's start-up, in the order a scan takes them, each timed once in a fresh
# process (argv[1]: the checkpoint); prints "step seconds" lines.
PHASES = """
import sys, time
t = [time.perf_counter()]
def step(name):
    t.append(time.perf_counter())
    print(name, t[-1] - t[-2])
import torch
step("import torch")
import bioclass.cli, bioclass.scan.runner, bioclass.audio.io
step("import bioclass's command line and scan modules, soundfile, soxr")
from bioclass.inference.models import load_models, prepare_for_inference
loaded = load_models([sys.argv[1]])
step("load the checkpoint, build the model")
prepare_for_inference(loaded.models[0], torch.device("cpu"))
step("prepare (fold BatchNorm, channels-last)")
from bioclass.runtime.precision import resolve_precision
resolve_precision(torch.device("cpu"), "auto")
step("--precision auto (the bf16 probe's kept answer, where bf16 is native)")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", type=Path, help="checkpoint to scan with (default: CNN10)")
    args = parser.parse_args()
    env = process_env()  # the bioclass of this checkout, whatever is installed
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model = args.model or make_checkpoint(folder / "cnn10.pt")
        wave = 0.05 * np.random.default_rng(0).standard_normal(3 * 16000)
        sf.write(folder / "three.wav", wave.astype(np.float32), 16000)
        commands = {
            "import torch": [sys.executable, "-c", "import torch"],
            # The same without the interpreter's teardown, which `bioclass` skips
            # (bioclass.core.process_exit): what bioclass adds beyond torch's import.
            "import torch, no teardown": [
                sys.executable,
                "-c",
                "import os, torch; os._exit(0)",
            ],
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
        phases: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            result = subprocess.run(
                [sys.executable, "-c", PHASES, str(model)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            )
            for line in result.stdout.splitlines():
                name, _, seconds = line.rpartition(" ")
                phases.setdefault(name, []).append(float(seconds))
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
    bare = median["bioclass scan, 3 s file"] / median["import torch, no teardown"]
    print(f"scan / import torch without its teardown: {bare:.2f}x")
    print(f"--help: {median['bioclass --help']:.2f} s (target < 0.5)")
    print("\nwhere a scan's start-up goes (medians, one fresh process per repeat):\n")
    print("| step | median s |")
    print("|---|---:|")
    for name, values in phases.items():
        print(f"| {name} | {statistics.median(values):.3f} |")


if __name__ == "__main__":
    main()
