"""Pretraining throughput (pairs/s) and where the time goes: decoding pairs (with mix-back),
view augmentation, and the model step, measured side by side in one run.

The archive is the real Jura field recordings (../shared/data/field_unlabeled: 22.05 kHz FLAC,
resampled to 16 kHz); the encoder and patch follow the recipe given (default: the few-label
benchmark's CNN6 on 0.2 s patches; pass --model cnn10 --patch 1.01 for Fonseca's setting).

    python benchmarks/pretrain_throughput.py [--model cnn6] [--patch 0.2] [--batch 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from bioclass.augment.views import augment_views
from bioclass.losses import nt_xent
from bioclass.models import FrontendConfig, ProjectionHead, create_model
from bioclass.pretrain.archive import index_archive
from bioclass.pretrain.loop import pretrain
from bioclass.pretrain.pairs import PairDataset
from bioclass.recipe import recipe_from_dict

FIELD = Path(__file__).resolve().parents[1] / "../shared/data/field_unlabeled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn6")
    parser.add_argument("--patch", type=float, default=0.2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    audio = {
        "sample_rate": 16000,
        "clip_seconds": args.patch,
        "n_fft": 512,
        "hop_length": 160,
        "n_mels": 64,
        "f_max": 8000.0,
    }
    recipe = recipe_from_dict(
        {
            "audio": audio,
            "model": {"name": args.model, "dropout": 0.0, "block_dropout": 0.0},
            "train": {
                "batch_size": args.batch,
                "iterations": args.iterations,
                "eval_every": args.iterations,
            },
            "pretrain": {"patch_seconds": args.patch},
        }
    )
    recordings, _ = index_archive([FIELD], 0.05)
    data = PairDataset(recordings, 16000, args.patch, "random", 0.05, None, seed=0)
    frontend = FrontendConfig(16000, 512, 160, 64, 50.0, 8000.0)
    encoder = create_model(args.model, 0, frontend, 0.0, 0.0)
    head = ProjectionHead(encoder.embed_dim, 128, encoder.embed_dim)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    parts: dict[str, list[float]] = {}
    loop_rates = []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        pairs = torch.stack([data[r * args.batch + k] for k in range(args.batch)])
        t1 = time.perf_counter()
        wave = pairs.transpose(0, 1).reshape(2 * args.batch, -1)
        spec = encoder.spectrogram(wave)
        t2 = time.perf_counter()
        views = augment_views(spec.detach(), recipe.pretrain.views, gen)
        t3 = time.perf_counter()
        h = encoder.embed_spec(views)
        z = head(h)
        loss = nt_xent(z[: args.batch], z[args.batch :], 0.2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        t4 = time.perf_counter()
        for name, seconds in (
            ("decode + resample + mix-back", t1 - t0),
            ("log-mel front end", t2 - t1),
            ("view augmentation", t3 - t2),
            ("encoder + head + loss, fwd + bwd + Adam", t4 - t3),
        ):
            parts.setdefault(name, []).append(seconds)
        with tempfile.TemporaryDirectory() as tmp:
            history = pretrain(recipe, [FIELD], Path(tmp) / "run", device="cpu")
        elapsed = float(history["elapsed_s"].iloc[-1])
        loop_rates.append(args.iterations * args.batch / elapsed)
    per_batch = {k: statistics.median(v) for k, v in parts.items()}
    total = sum(per_batch.values())
    table = pd.DataFrame(
        {
            "stage (one batch)": list(per_batch),
            "median s": list(per_batch.values()),
            "share": [v / total for v in per_batch.values()],
        }
    )
    print(
        f"\n{args.model}, {args.patch:g} s patches, batch {args.batch} pairs, "
        f"{torch.get_num_threads()} threads, archive {len(recordings)} files"
    )
    print(table.to_markdown(index=False, floatfmt=".3f"))
    print(
        f"stages in sequence: {args.batch / total:.1f} pairs/s; full pretrain loop "
        f"(monitoring excluded, {args.iterations} iterations): "
        f"{statistics.median(loop_rates):.1f} pairs/s (runs: "
        f"{', '.join(f'{x:.1f}' for x in loop_rates)})"
    )


if __name__ == "__main__":
    main()
