"""`bioclass pretrain`: contrastive representation learning on unlabelled recordings.

One straight line (Fonseca et al. 2021; Wang et al. 2022): archive index -> pairs of patches of
one recording with mix-back -> log-mels -> per-patch view augmentations -> encoder h ->
projection head z -> NT-Xent on z (or ACL: NT-Xent on z + angular margin on h) -> periodic
monitoring (kNN / linear probe on a labelled set, alignment and uniformity) -> encoder.pt, which
`bioclass train` starts from with `model.init_from`.

Under torchrun each rank embeds its share of every batch and the contrastive loss is computed
over the global batch (every rank's embeddings gathered, gradients flowing back): N ranks of
batch b train as one process of batch N*b, as SimCLR is trained.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from bioclass.augment.views import augment_views
from bioclass.checkpoint import model_checkpoint
from bioclass.core.activation import Activation
from bioclass.core.console import console, progress_bar
from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipDataset, decode_all
from bioclass.data.labels import resolve_classes
from bioclass.data.prepare import assign_splits, clip_spec, read_label_table
from bioclass.evaluation.plots import plot_pretrain_curves
from bioclass.losses import angular_contrastive, nt_xent
from bioclass.models import (
    Classifier,
    ProjectionHead,
    frontend_config,
    known_model,
    model_from_recipe,
)
from bioclass.pretrain.archive import index_archive
from bioclass.pretrain.monitor import (
    LabelledProbeSet,
    alignment,
    probe_metrics,
    uniformity,
)
from bioclass.pretrain.pairs import PairBatches, PairDataset, pairs_per_epoch
from bioclass.recipe import Recipe, dump_recipe, recipe_from_dict, recipe_to_dict
from bioclass.runtime import distributed
from bioclass.runtime.bad_files import bad_files_on_refusal, write_bad_files
from bioclass.runtime.device import pick_device
from bioclass.runtime.loop import LoopPlan, run_loop
from bioclass.runtime.precision import autocast, training_dtype
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.runtime.state import TrainingState
from bioclass.runtime.workers import loader_workers

log = logging.getLogger(__name__)

ENCODER = "encoder.pt"  # what `train` starts from (model.init_from) and `embed` reads
MONITOR_PAIRS = 256  # fixed pairs whose embeddings give alignment and uniformity
MONITOR_OFFSET = 1 << 40  # their pair numbers: far from any training batch's


def pretrain_iterations(recipe: Recipe, recordings: pd.DataFrame) -> int:
    """train.iterations, or train.epochs x (the archive's non-overlapping pairs / batch)."""
    t = recipe.train
    if t.iterations is not None:
        return t.iterations
    if t.epochs is not None:
        per_epoch = math.ceil(
            pairs_per_epoch(recordings, recipe.pretrain.patch_seconds) / t.batch_size
        )
        return t.epochs * max(1, per_epoch)
    raise BioclassError("the recipe sets neither train.iterations nor train.epochs")


def pretrain(
    recipe: Recipe | None,
    archives: list[str | Path],
    out_dir: str | Path,
    device: str = "auto",
    resume: bool = False,
) -> pd.DataFrame:
    """Pretrain the recipe's encoder on the audio below `archives`, writing into `out_dir`.

    Args:
        recipe: validated recipe (None when resuming: the saved one is used).
        archives: folders/files/globs of unlabelled audio (added to pretrain.archives).
        out_dir: run directory (new or empty unless resuming).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        resume: continue the interrupted run in `out_dir`.

    Returns:
        The monitoring history (one row per evaluation).
    """
    saved = None
    if resume:
        run, saved = RunDirectory.reopen(out_dir)
        recipe = recipe_from_dict(saved["recipe"], source=str(run / LAST))
        archives = list(saved["archives"])
    if recipe is None:
        raise BioclassError("give a recipe (--recipe), or --resume a run directory")
    sources = [str(a) for a in archives] + list(recipe.pretrain.archives)
    if not sources:
        raise BioclassError("give the unlabelled audio: ARCHIVE folders or pretrain.archives")
    with distributed.process_group(pick_device(device)) as dev:
        if saved is not None:
            distributed.check_resume(saved)
        distributed.check_batch(recipe.train.batch_size, "train.batch_size")
        known_model(recipe.model.name)
        if not resume:
            # Rank 0 makes (and checks) the folder; the others write nothing into it.
            run = distributed.on_main(lambda: RunDirectory.create(out_dir)) or RunDirectory(
                Path(out_dir)
            )
        with run.kept_once_saved("pretrain"):
            return _pretrain(recipe, sources, run, dev, saved)


def _pretrain(
    recipe: Recipe,
    sources: list[str],
    run: RunDirectory,
    dev: torch.device,
    saved: dict[str, Any] | None,
) -> pd.DataFrame:
    """`pretrain` in its run directory."""
    distributed.seed_torch(recipe.seed)
    console.print(f"run directory: {run.path}   device: {dev}")
    with progress_bar() as progress:
        task = progress.add_task("indexing archive", total=None, info="")
        with bad_files_on_refusal(run):
            recordings, bad = index_archive(
                sources,
                recipe.data.max_bad_fraction,
                lambda n: progress.advance(task, n),
                recipe.audio.channel,
            )
        probe = _probe_set(recipe, progress)
    run.write_text("recipe.yaml", dump_recipe(recipe))
    run.write_table("archive.csv", recordings)
    write_bad_files(run, bad, "file")
    hours = recordings["duration_s"].sum() / 3600
    console.print(
        f"archive: {len(recordings)} recordings, {hours:.2f} h"
        + (f"   monitoring on {len(probe.val)} labelled clips" if probe else "")
    )
    fit = _Pretraining(recipe, sources, recordings, probe, run, dev, saved)
    fit.run()
    frame = pd.DataFrame(fit.state.history)
    distributed.on_main(lambda: plot_pretrain_curves(frame, run / "learning_curve.png"))
    console.print(
        f"saved {run / ENCODER}: start a classifier from it with "
        f"--set model.init_from={run / ENCODER}"
    )
    return frame


def _probe_set(recipe: Recipe, progress: Any) -> LabelledProbeSet | None:
    """The labelled set named by the recipe's data section, for monitoring (optional)."""
    if not (recipe.data.root or recipe.data.labels_csv):
        return None
    table, source = read_label_table(recipe)
    classes = resolve_classes(table, recipe.data.classes, source)
    table = assign_splits(table, [], recipe)
    table = table[table["split"].isin(["train", "val"])].reset_index(drop=True)
    spec = clip_spec(recipe)
    task = progress.add_task("decoding labelled clips", total=len(table), info="")
    waves, table, _ = decode_all(
        table, spec, recipe.data.max_bad_fraction, lambda n: progress.advance(task, n)
    )
    is_train = (table["split"] == "train").to_numpy()

    def part(mask: np.ndarray) -> ClipDataset:
        return ClipDataset(
            table[mask].reset_index(drop=True),
            classes,
            spec,
            [w for w, m in zip(waves, mask, strict=True) if m],
        )

    return LabelledProbeSet(part(is_train), part(~is_train), classes)


class _Pretraining:
    """One pretraining run on an indexed archive: the step and monitoring `run_loop` calls."""

    def __init__(
        self,
        recipe: Recipe,
        sources: list[str],
        recordings: pd.DataFrame,
        probe: LabelledProbeSet | None,
        run: RunDirectory,
        dev: torch.device,
        saved: dict[str, Any] | None,
    ) -> None:
        t, p = recipe.train, recipe.pretrain
        self.recipe, self.sources, self.recordings, self.probe = recipe, sources, recordings, probe
        self.rundir, self.dev = run, dev
        self.plan = LoopPlan(
            "pretraining",
            "pretrain",
            pretrain_iterations(recipe, recordings),
            t.lr,
            t.warmup_iterations,
            t.schedule,
            t.eval_every,
        )
        self.frontend = frontend_config(recipe)
        self.encoder = model_from_recipe(recipe, 0).to(dev)
        if distributed.current().distributed:
            # Batch statistics of the global batch, as one process of the whole batch has.
            distributed.sync_batch_norm(self.encoder)
        self._ddp: nn.Module | None = None  # encoder and head under DDP (several ranks)
        self.head = ProjectionHead(
            self.encoder.embed_dim, p.projection_dim, p.projection_hidden or self.encoder.embed_dim
        ).to(dev)
        if distributed.current().distributed:
            distributed.sync_batch_norm(self.head)
        if dev.type == "cuda":
            self.encoder = self.encoder.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(
            [*self.encoder.parameters(), *self.head.parameters()],
            lr=t.lr,
            weight_decay=t.weight_decay,
        )
        self.amp_dtype = training_dtype(dev, t.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.recipe_dict = recipe_to_dict(recipe)
        self.state = TrainingState()
        if saved is not None:
            self.state = TrainingState.from_checkpoint(saved)
            self.encoder.load_state_dict(saved["weights"])
            self.state.restore(self.optimizer, self.head)
            distributed.restore_rank_rng(saved)
            console.print(
                f"resuming at iteration {self.state.iteration} of {self.plan.n_iterations}"
            )

    def _dataset(self) -> PairDataset:
        p, a = self.recipe.pretrain, self.recipe.audio
        return PairDataset(
            self.recordings,
            a.sample_rate,
            p.patch_seconds,
            p.sampling,
            p.mixback_alpha,
            a.channel,
            self.recipe.seed,
        )

    def run(self) -> None:
        """Pretrain from the current state to the last iteration."""
        t, dev = self.recipe.train, self.dev
        loader = torch.utils.data.DataLoader(
            self._dataset(),
            batch_sampler=PairBatches(
                t.batch_size,
                self.state.iteration,
                self.plan.n_iterations,
                distributed.current().rank,
                distributed.current().world_size,
            ),
            num_workers=loader_workers(t.num_workers),
            pin_memory=dev.type == "cuda",
            generator=torch.Generator().manual_seed(self.recipe.seed),
        )
        # Fixed pairs (drawn from a separate seed stream, and a dataset of their own so a
        # recording found broken here does not change the training draws).
        monitor_set = self._dataset()
        self.monitor_pairs = torch.stack(
            [monitor_set[MONITOR_OFFSET + i] for i in range(MONITOR_PAIRS)]
        )
        main = distributed.current().is_main
        if self.state.iteration == 0 and main:  # the untrained encoder: the baseline to beat
            self.state.history.append(self._monitor(0, float("nan"), 0.0))
            console.print(_describe(self.state.history[-1]))
        distributed.barrier()
        self.encoder.train()
        self.head.train()
        run_loop(self.plan, loader, self.optimizer, self, self.state, self.rundir)

    def step(self, iteration: int, pairs: torch.Tensor) -> float:
        """One optimiser step on a batch of pairs (B, 2, samples); every patch draws its own
        view augmentation, from a generator that depends on the seed and `iteration` only (and
        the rank, under torchrun)."""
        seed = self.recipe.seed * 1_000_003 + iteration
        rank = distributed.current()
        if rank.distributed:
            seed = seed * 7919 + rank.rank
        gen = torch.Generator().manual_seed(seed)
        wave = pairs.to(self.dev, non_blocking=True)
        if rank.distributed:
            if self._ddp is None:
                self._ddp = distributed.wrap(_PairLoss(self), self.dev)
            loss = self._ddp(wave, gen)
        else:
            loss = self._loss(wave, gen)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach())

    def _loss(self, pairs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """The contrastive loss of a batch of pairs (B, 2, samples), over the global batch."""
        p, dev = self.recipe.pretrain, self.dev
        n = pairs.shape[0]
        wave = pairs.transpose(0, 1).reshape(2 * n, -1)  # (2B, samples)
        with autocast(dev, self.amp_dtype):
            spec = self.encoder.spectrogram(wave)  # (2B, samples) -> (2B, 1, frames, mels)
            spec = augment_views(spec, p.views, gen)
            if dev.type == "cuda":
                spec = spec.contiguous(memory_format=torch.channels_last)
            h = self.encoder.embed_spec(spec)  # (2B, 1, F, M) -> (2B, D)
            z = self.head(h)  # (2B, D) -> (2B, projection_dim)
            # Each view's rows of every rank, in rank order: row i of z1 still pairs with z2's.
            z1, z2 = distributed.all_gather(z[:n]), distributed.all_gather(z[n:])
            if p.loss == "acl":
                h1, h2 = distributed.all_gather(h[:n]), distributed.all_gather(h[n:])
                return angular_contrastive(z1, z2, h1, h2, p.acl_alpha, p.temperature, p.margin)
            return nt_xent(z1, z2, p.temperature)

    def evaluate(self, iteration: int, train_loss: float, elapsed: float) -> list[dict]:
        return [self._monitor(iteration, train_loss, elapsed)]

    def describe(self, iteration: int, rows: list[dict]) -> str:
        return _describe(rows[-1])

    def save(self, state: TrainingState) -> None:
        """encoder.pt (what `train` starts from) and last.pt (for --resume); rank 0 writes."""
        ranks = distributed.rank_state()
        if not distributed.current().is_main:
            return
        self.rundir.save_checkpoint(ENCODER, self._checkpoint(state))
        extra = {**state.capture(self.optimizer, self.head), "archives": self.sources, **ranks}
        self.rundir.save_checkpoint(LAST, self._checkpoint(state, extra))

    def _checkpoint(
        self, state: TrainingState, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        return _encoder_checkpoint(
            self.encoder,
            self.recipe,
            self.recipe_dict,
            self.frontend,
            state.iteration,
            state.history,
            extra,
        )

    @torch.no_grad()
    def _monitor(self, iteration: int, loss: float, elapsed: float) -> dict[str, Any]:
        """Alignment/uniformity on the fixed pairs; kNN and linear probe when a labelled set
        is given."""
        encoder, dev, recipe = self.encoder, self.dev, self.recipe
        encoder.eval()
        n = self.monitor_pairs.shape[0]
        wave = self.monitor_pairs.transpose(0, 1).reshape(2 * n, -1).to(dev)
        h = torch.cat([encoder.embed(chunk) for chunk in wave.split(64)]).float().cpu().numpy()
        row: dict[str, Any] = {
            "iteration": iteration,
            "loss": loss,
            "alignment": alignment(h[:n], h[n:]),
            "uniformity": uniformity(h),
        }
        if self.probe is not None:
            p = recipe.pretrain
            row.update(
                probe_metrics(
                    encoder,
                    self.probe,
                    p.knn_k,
                    p.probe_epochs,
                    recipe.train.batch_size,
                    dev,
                    recipe.seed,
                )
            )
        encoder.train()
        row["elapsed_s"] = round(elapsed, 2)
        return row


class _PairLoss(nn.Module):
    """Encoder and projection head as one module whose forward is the batch loss: the shape
    DistributedDataParallel wraps, as it synchronises the gradients of what forward used."""

    def __init__(self, fit: _Pretraining) -> None:
        super().__init__()
        self.encoder, self.head = fit.encoder, fit.head
        self.fit = [fit]  # a list: not a submodule

    def forward(self, pairs: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return self.fit[0]._loss(pairs, gen)


def _encoder_checkpoint(
    encoder: Classifier,
    recipe: Recipe,
    recipe_dict: dict[str, Any],
    frontend: Any,
    iteration: int,
    history: list[dict[str, Any]],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return model_checkpoint(
        encoder,
        recipe.model.name,
        [],
        frontend,
        recipe_dict,
        None,
        use_ema=False,
        score_activation=Activation.NONE.value,
        extra={
            "kind": "encoder",
            "iteration": iteration,
            "history": history,
            "window_seconds": recipe.pretrain.patch_seconds,
            **(extra or {}),
        },
    )


def _describe(row: dict[str, Any]) -> str:
    loss = "-" if math.isnan(row["loss"]) else f"{row['loss']:.4f}"
    parts = [
        f"iteration {row['iteration']}: loss {loss}",
        f"alignment {row['alignment']:.3f}",
        f"uniformity {row['uniformity']:.3f}",
    ]
    for key in ("knn_accuracy", "knn_uar", "probe_accuracy", "probe_uar"):
        if row.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {row[key]:.3f}")
    return ", ".join(parts)
