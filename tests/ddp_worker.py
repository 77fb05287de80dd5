"""Run by tests/test_distributed.py, alone (one process) or under torchrun (several ranks).

python tests/ddp_worker.py step LABELS_CSV OUT      one training step of batch 8, no
                                                    augmentation, no dropout; rank 0 saves
                                                    the loss, gradients and BN statistics
python tests/ddp_worker.py contrastive - OUT        NT-Xent, ACL and SupCon over the global
                                                    batch: rank 0 saves losses and gradients
python tests/ddp_worker.py crash - OUT -- ARGS...   `bioclass ARGS` where rank 1 dies at
                                                    step 3
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import torch

from bioclass.recipe import recipe_from_dict
from bioclass.runtime import distributed
from bioclass.runtime.rundir import RunDirectory


def step(labels_csv: str, out: Path) -> None:
    from bioclass.data.prepare import load_labelled
    from bioclass.data.sampler import BatchSampler
    from bioclass.training.fit import Fit

    recipe = recipe_from_dict(
        {
            "seed": 3,
            "audio": {
                "sample_rate": 8000,
                "clip_seconds": 1.0,
                "n_fft": 256,
                "hop_length": 160,
                "n_mels": 32,
                "f_max": 4000,
            },
            "data": {"labels_csv": labels_csv, "val_fraction": 0.3},
            "model": {"name": "cnn6", "dropout": 0.0, "block_dropout": 0.0},
            "augment": {"mixup_alpha": 0.0, "specaugment": False},
            "train": {"batch_size": 8, "iterations": 1, "eval_every": 1, "ema": False},
        },
        source="test",
    )
    with distributed.process_group(torch.device("cpu")) as dev:
        distributed.seed_torch(recipe.seed)
        clips = load_labelled(recipe)
        data = clips.partition((clips.used["split"] == "val").to_numpy())
        fit = Fit(recipe, data, RunDirectory(out), dev, None)
        ranks = distributed.current()
        sampler = BatchSampler(
            data.train.targets, 8, recipe.seed, True, 0, 1, 0, ranks.rank, ranks.world_size
        )
        items = next(iter(sampler))
        batch = torch.utils.data.default_collate([data.train[item] for item in items])
        loss = fit.step(1, tuple(batch))
        loss, _ = distributed.step_summary(loss, False)
        if ranks.is_main:
            # Adam's first update is about lr * sign(gradient), which turns float noise in a
            # near-zero gradient into a full step: the gradients are what to compare.
            grads = {n: p.grad.detach().clone() for n, p in fit.model.named_parameters()}
            buffers = {n: b.detach().clone() for n, b in fit.model.named_buffers()}
            saved = {"loss": loss, "grads": grads, "buffers": buffers}
            torch.save(saved, out / f"step_{ranks.world_size}.pt")


def contrastive(out: Path) -> None:
    from bioclass.losses import angular_contrastive, nt_xent, supcon

    with distributed.process_group(torch.device("cpu")):
        ranks = distributed.current()
        gen = torch.Generator().manual_seed(0)
        x1, x2 = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
        labels = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
        torch.manual_seed(1)
        proj = distributed.wrap(torch.nn.Linear(5, 4), torch.device("cpu"))
        share = slice(ranks.rank * 8 // ranks.world_size, (ranks.rank + 1) * 8 // ranks.world_size)
        results = {}
        for name in ("nt_xent", "acl", "supcon"):
            proj.zero_grad()
            z1 = distributed.all_gather(proj(x1[share]))
            z2 = distributed.all_gather(proj(x2[share]))
            if name == "nt_xent":
                loss = nt_xent(z1, z2, 0.2)
            elif name == "acl":
                loss = angular_contrastive(z1, z2, z1, z2, 0.5, 0.2, 0.5)
            else:
                loss = supcon(
                    torch.cat([z1, z2]), distributed.all_gather(labels[share]).repeat(2), 0.2
                )
            loss.backward()
            grads = [p.grad.detach().clone() for p in proj.parameters()]
            results[name] = {"loss": float(loss), "grads": grads}
        if ranks.is_main:
            torch.save(results, out / f"contrastive_{ranks.world_size}.pt")


def on_rank_1_at(iteration_wanted: int, action: object, args: list[str]) -> None:
    """`bioclass ARGS` with `action()` done on rank 1 at the start of step `iteration_wanted`."""
    from bioclass.cli import main
    from bioclass.training.fit import Fit

    step = Fit.step

    def step_with_action(self: Fit, iteration: int, batch: object) -> float:
        if iteration == iteration_wanted and distributed.current().rank == 1:
            action()
        return step(self, iteration, batch)

    Fit.step = step_with_action  # type: ignore[method-assign]
    main(args)


if __name__ == "__main__":
    torch.set_num_threads(1)
    mode, arg, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    if mode == "step":
        step(arg, folder)
    elif mode == "contrastive":
        contrastive(folder)
    elif mode == "crash":  # a rank that dies without a word (killed, out of memory)
        on_rank_1_at(3, lambda: os._exit(3), sys.argv[5:])
    else:
        on_rank_1_at(4, lambda: os.kill(os.getpid(), signal.SIGTERM), sys.argv[5:])
