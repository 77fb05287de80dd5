"""Training throughput: the full `bioclass train` loop against the bare model step, side by side.

The loop includes batch sampling (balanced), clip serving and padding, SpecAugment, MixUp, the
optimiser step and the EMA update; the bare step is forward + backward + Adam on a ready tensor.
Both run CNN10 on 3 s clips at 16 kHz, batch 32 (the Pellegrini recipe), interleaved, several
repeats; medians and the ratio are printed.

    python benchmarks/train_throughput.py [--iterations 12] [--repeats 3] [--model cnn10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bioclass.models import FrontendConfig, create_model
from bioclass.recipe import recipe_from_dict
from bioclass.synthetic.dataset import make_clip_dataset
from bioclass.training.loop import train

SAMPLE_RATE, CLIP_SECONDS, BATCH = 16000, 3.0, 32


def model_only(name: str, iterations: int) -> float:
    """Clips per second of forward + backward + Adam step on a fixed random batch."""
    torch.manual_seed(0)
    model = create_model(name, 5, FrontendConfig(sample_rate=SAMPLE_RATE, f_max=8000))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    wave = torch.randn(BATCH, int(SAMPLE_RATE * CLIP_SECONDS)) * 0.1
    target = F.one_hot(torch.arange(BATCH) % 5, 5).float()
    model.train()
    started = time.perf_counter()
    for _ in range(iterations):
        loss = F.binary_cross_entropy_with_logits(model(wave), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return iterations * BATCH / (time.perf_counter() - started)


def full_loop(name: str, iterations: int, csv: Path, out: Path) -> float:
    """Clips per second of the real training loop (time to the last step, before validation)."""
    recipe = recipe_from_dict(
        {
            "seed": 0,
            "audio": {"sample_rate": SAMPLE_RATE, "clip_seconds": CLIP_SECONDS, "f_max": 8000.0},
            "data": {"labels_csv": str(csv), "val_fraction": 0.1, "balanced": True},
            "model": {"name": name},
            "augment": {"mixup_alpha": 0.4, "specaugment": True},
            "train": {
                "batch_size": BATCH,
                "iterations": iterations,
                "eval_every": iterations,
                "ema_start": 0,
            },
        }
    )
    result = train(recipe, out, device="cpu")
    elapsed = float(result.history["elapsed_s"].iloc[0])
    return iterations * BATCH / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn10")
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counts = {"background": 120, "harmonic": 50, "pulses": 30, "trill": 20, "bark": 20}
        table = make_clip_dataset(
            root,
            np.random.default_rng(0),
            counts,
            sample_rate=SAMPLE_RATE,
            duration_range=(2.0, 3.5),
        )
        table.to_csv(root / "labels.csv", index=False)
        bare, loop = [], []
        for r in range(args.repeats):
            bare.append(model_only(args.model, args.iterations))
            run_dir = root / f"run{r}"
            loop.append(full_loop(args.model, args.iterations, root / "labels.csv", run_dir))
            print(f"repeat {r}: model-only {bare[-1]:.2f} clips/s, loop {loop[-1]:.2f} clips/s")
    summary = pd.DataFrame(
        {
            "measure": ["model-only step", "full train loop"],
            "median clips/s": [statistics.median(bare), statistics.median(loop)],
            "runs": [", ".join(f"{x:.2f}" for x in bare), ", ".join(f"{x:.2f}" for x in loop)],
        }
    )
    print(
        f"\n{args.model}, batch {BATCH}, {CLIP_SECONDS:g} s at {SAMPLE_RATE} Hz, "
        f"{args.iterations} iterations x {args.repeats} repeats, "
        f"{torch.get_num_threads()} threads"
    )
    print(summary.to_markdown(index=False, floatfmt=".2f"))
    print(f"loop / model-only: {statistics.median(loop) / statistics.median(bare):.1%}")


if __name__ == "__main__":
    main()
