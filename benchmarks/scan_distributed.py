"""`bioclass scan` on Ray against the normal scanner, same inputs, same run: wall time, audio
hours per wall minute, Ray's overhead, and whether the outputs are identical.

    (a) the normal scanner, one torch thread (OMP_NUM_THREADS=1), and for reference with the
        default threads (every core)
    (b) --ray local --ray-workers 1 (1 CPU, so 1 torch thread)
    (c) --ray local --ray-workers 2 (1 thread each)
    (d) as (c), with every file cut into segments of --segment-minutes (by default files are
        cut only when there are fewer of them than workers, which two files and two workers
        are not): the cut files' scores must be identical too, and the row shows what the
        segments' extra decoding costs (each decodes its file from the start)

The inputs are real soundscapes from ../shared/data/soundscapes (BirdNET's 48 kHz example,
OpenSoundscape's 32 kHz minute) looped to a few minutes each as FLAC at their own rate, so
every scan decodes and resamples. The
model is an untrained CNN10 (5 classes, 3 s windows at 16 kHz: speed does not depend on the
weights). Each scan is its own `bioclass scan` process, Ray runs starting their own local Ray
runtime (its start-up is part of their wall time and of the overhead). Outputs of (b), (c) and
(d) are compared byte for byte with (a) at one thread: the detections CSV, Raven tables,
Audacity labels, score matrix and the manifest without its timings.

The load average (1 min) is printed before and after: on a shared machine other jobs' load
changes every number here.

    python benchmarks/scan_distributed.py [--minutes-per-file 6] [--segment-minutes 1.5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scan_e2e import SOUNDSCAPES, loop_to_length, make_checkpoint

SOURCES = ["birdnet_example_soundscape.flac", "opensoundscape_1min.flac"]


def scan(args: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one `bioclass scan` process."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bioclass", "scan", *args, "-q"],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
    )
    if done.returncode != 0:
        raise SystemExit(f"scan failed:\n{done.stderr}")
    return time.perf_counter() - started


def outputs(folder: Path) -> dict[str, bytes]:
    """The outputs under `folder` (not the journal), paths normalised, manifest without timings
    (and without `precision_reason`, which quotes the bf16 probe's measured speed on CPUs with
    native bf16: a figure of the moment, like the wall time)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.parent.name.endswith(".parts") or path.suffix == ".lock":
            continue
        data = path.read_bytes().replace(f"{folder}/".encode(), b"OUT/")
        if path.name.endswith("manifest.json"):
            manifest = json.loads(data)
            for key in ("wall_seconds", "created", "precision_reason"):
                manifest.pop(key, None)
            data = json.dumps(manifest, sort_keys=True).encode()
        found[str(path.relative_to(folder))] = data
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes-per-file", type=float, default=6.0)
    parser.add_argument("--segment-minutes", type=float, default=1.5)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = root / "cnn10.pt"
        make_checkpoint(model)
        inputs = root / "inputs"
        inputs.mkdir()
        for name in SOURCES:
            loop_to_length(SOUNDSCAPES / name, inputs / name, args.minutes_per_file * 60)
        audio_hours = len(SOURCES) * args.minutes_per_file / 60

        def common(out: str) -> list[str]:
            folder = root / f"run_{out}"  # not a prefix of another path in the outputs
            return [
                str(inputs), "--model", str(model), "--out", str(folder / "det.csv"),
                "--format", "raven", "--format", "audacity",
                "--scores", str(folder / "scores.csv"), "--threshold", "0.3",
            ]  # fmt: skip

        ray = ["--ray", "local"]
        cut = ["--ray-segment-minutes", str(args.segment_minutes)]
        runs = [
            ("(a) normal scanner, 1 thread", "a", [], {"OMP_NUM_THREADS": "1"}),
            (f"(a') normal scanner, {os.cpu_count()} threads", "a2", [], {}),
            ("(b) Ray, 1 worker x 1 thread", "b", [*ray, "--ray-workers", "1"], {}),
            ("(c) Ray, 2 workers x 1 thread", "c", [*ray, "--ray-workers", "2"], {}),
            ("(d) as (c), files cut into segments", "d", [*ray, "--ray-workers", "2", *cut], {}),
        ]
        walls = {}
        for label, key, extra, env in runs:
            walls[key] = scan([*common(key), *extra], env)
            print(f"{label}: {walls[key]:.1f} s", flush=True)
        reference = outputs(root / "run_a")
        identical = {key: outputs(root / f"run_{key}") == reference for key in ("b", "c", "d")}
    load_after = os.getloadavg()[0]

    print(f"\n{audio_hours * 60:.0f} min of audio in {len(SOURCES)} files "
          f"(segments of {args.segment_minutes:g} min in (d)); "
          f"load average {load_before:.2f} before, {load_after:.2f} after "
          f"({os.cpu_count()} cores)\n")  # fmt: skip
    print("| run | wall s | audio h / wall min | vs (a) | outputs identical to (a) |")
    print("|---|---|---|---|---|")
    for label, key, _, _ in runs:
        same = {"a": "(reference)", "a2": "-"}.get(key) or ("yes" if identical[key] else "NO")
        print(
            f"| {label} | {walls[key]:.1f} | {audio_hours / (walls[key] / 60):.2f} | "
            f"{walls[key] / walls['a']:.2f}x | {same} |"
        )
    overhead = walls["b"] / walls["a"] - 1
    print(f"\nRay overhead, (b) vs (a): {overhead:+.0%} of the wall time")


if __name__ == "__main__":
    main()
