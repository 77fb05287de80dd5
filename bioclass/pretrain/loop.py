"""`bioclass pretrain`: contrastive representation learning on unlabelled recordings.

One straight line (Fonseca et al. 2021; Wang et al. 2022): archive index -> pairs of patches of
one recording with mix-back -> log-mels -> per-patch view augmentations -> encoder h ->
projection head z -> NT-Xent on z (or ACL: NT-Xent on z + angular margin on h) -> periodic
monitoring (kNN / linear probe on a labelled set, alignment and uniformity) -> encoder.pt, which
`bioclass train` starts from with `model.init_from`.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bioclass.checkpoint import CheckpointError, atomic_save, model_checkpoint, read_checkpoint
from bioclass.core.console import console, progress_bar
from bioclass.core.errors import BioclassError
from bioclass.data.clips import ClipDataset, decode_all
from bioclass.data.labels import resolve_classes
from bioclass.data.prepare import assign_splits, clip_spec, read_label_table
from bioclass.evaluation.plots import plot_pretrain_curves
from bioclass.losses import angular_contrastive, nt_xent
from bioclass.models import Classifier, ProjectionHead, create_model, frontend_config
from bioclass.pretrain.archive import index_archive
from bioclass.pretrain.monitor import (
    LabelledProbeSet,
    alignment,
    probe_metrics,
    uniformity,
)
from bioclass.pretrain.pairs import PairBatches, PairDataset, pairs_per_epoch
from bioclass.recipe import Recipe, dump_recipe, recipe_from_dict, recipe_to_dict
from bioclass.runtime.device import pick_device
from bioclass.runtime.interrupt import graceful_interrupt
from bioclass.runtime.precision import autocast, training_dtype
from bioclass.runtime.schedule import lr_factor

log = logging.getLogger(__name__)

ENCODER = "encoder.pt"  # what `train` starts from (model.init_from) and `embed` reads
LAST = "last.pt"  # full state for --resume
MONITOR_PAIRS = 256  # fixed pairs whose embeddings give alignment and uniformity
MONITOR_OFFSET = 1 << 40  # their pair numbers: far from any training batch's


class PretrainingInterrupted(BioclassError):
    """Ctrl-C during pretraining; the state was saved for --resume."""


def pretrain_iterations(recipe: Recipe, recordings: pd.DataFrame) -> int:
    """train.iterations, or train.epochs x (the archive's non-overlapping pairs / batch)."""
    t = recipe.train
    if t.iterations is not None:
        return t.iterations
    if t.epochs is not None:
        per_epoch = math.ceil(pairs_per_epoch(recordings, recipe.pretrain.patch_seconds)
                              / t.batch_size)
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
    run_dir = Path(out_dir)
    state = _read_state(run_dir) if resume else None
    if state is not None:
        recipe = recipe_from_dict(state["recipe"], source=str(run_dir / LAST))
        archives = list(state["archives"])
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise BioclassError(
            f"{run_dir} already holds files; choose another --out, or --resume {run_dir}")
    if recipe is None:
        raise BioclassError("give a recipe (--recipe), or --resume a run directory")
    sources = [str(a) for a in archives] + list(recipe.pretrain.archives)
    if not sources:
        raise BioclassError("give the unlabelled audio: ARCHIVE folders or pretrain.archives")
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    torch.manual_seed(recipe.seed)
    console.print(f"run directory: {run_dir}   device: {dev}")
    with progress_bar() as progress:
        task = progress.add_task("indexing archive", total=None, info="")
        recordings, bad = index_archive(sources, recipe.data.max_bad_fraction,
                                        lambda n: progress.advance(task, n))
        probe = _probe_set(recipe, progress)
    (run_dir / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    recordings.to_csv(run_dir / "archive.csv", index=False)
    if len(bad):
        bad.to_csv(run_dir / "bad_files.csv", index=False)
        console.print(f"[yellow]{len(bad)} unreadable file(s) skipped: see "
                      f"{run_dir / 'bad_files.csv'}")
    hours = recordings["duration_s"].sum() / 3600
    console.print(f"archive: {len(recordings)} recordings, {hours:.2f} h"
                  + (f"   monitoring on {len(probe.val)} labelled clips" if probe else ""))
    return _fit(recipe, sources, recordings, probe, run_dir, dev, state)


def _read_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / LAST
    if not path.is_file():
        raise BioclassError(f"nothing to resume: {path} not found")
    try:
        return read_checkpoint(path)
    except CheckpointError as exc:
        raise BioclassError(f"cannot resume: {exc}") from None


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
    waves, table, _ = decode_all(table, spec, recipe.data.max_bad_fraction,
                                 lambda n: progress.advance(task, n))
    is_train = (table["split"] == "train").to_numpy()

    def part(mask: np.ndarray) -> ClipDataset:
        return ClipDataset(table[mask].reset_index(drop=True), classes, spec,
                           [w for w, m in zip(waves, mask, strict=True) if m])

    return LabelledProbeSet(part(is_train), part(~is_train), classes)


def _fit(
    recipe: Recipe,
    sources: list[str],
    recordings: pd.DataFrame,
    probe: LabelledProbeSet | None,
    run_dir: Path,
    dev: torch.device,
    state: dict[str, Any] | None,
) -> pd.DataFrame:
    t, p = recipe.train, recipe.pretrain
    n_iterations = pretrain_iterations(recipe, recordings)
    frontend = frontend_config(recipe)
    encoder = create_model(recipe.model.name, 0, frontend, recipe.model.dropout,
                           recipe.model.block_dropout).to(dev)
    head = ProjectionHead(encoder.embed_dim, p.projection_dim,
                          p.projection_hidden or encoder.embed_dim).to(dev)
    if dev.type == "cuda":
        encoder = encoder.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam([*encoder.parameters(), *head.parameters()], lr=t.lr,
                                 weight_decay=t.weight_decay)
    amp_dtype = training_dtype(dev, t.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    recipe_dict = recipe_to_dict(recipe)
    start, history = 0, []
    if state is not None:
        encoder.load_state_dict(state["weights"])
        head.load_state_dict(state["head_weights"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        start, history = int(state["iteration"]), list(state["history"])
        console.print(f"resuming at iteration {start} of {n_iterations}")

    def dataset() -> PairDataset:
        return PairDataset(recordings, recipe.audio.sample_rate, p.patch_seconds, p.sampling,
                           p.mixback_alpha, recipe.audio.channel, recipe.seed)

    loader = torch.utils.data.DataLoader(
        dataset(), batch_sampler=PairBatches(t.batch_size, start, n_iterations),
        num_workers=t.num_workers, pin_memory=dev.type == "cuda",
        generator=torch.Generator().manual_seed(recipe.seed),
    )
    # Fixed pairs (drawn from a separate seed stream) for alignment/uniformity over time.
    monitor_pairs = torch.stack([dataset()[MONITOR_OFFSET + i] for i in range(MONITOR_PAIRS)])

    def save(iteration: int) -> None:
        atomic_save(_encoder_checkpoint(encoder, recipe, recipe_dict, frontend, iteration,
                                        history), run_dir / ENCODER)
        extra = {"head_weights": {k: v.detach().cpu() for k, v in head.state_dict().items()},
                 "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                 "archives": sources}
        atomic_save(_encoder_checkpoint(encoder, recipe, recipe_dict, frontend, iteration,
                                        history, extra), run_dir / LAST)

    losses: list[float] = []
    iteration = start
    if start == 0:  # the untrained encoder: the baseline pretraining must beat
        history.append(_monitor(encoder, probe, monitor_pairs, recipe, dev, 0, float("nan"), 0.0))
        console.print(_describe(history[-1]))
    started = time.perf_counter()
    encoder.train()
    head.train()
    with graceful_interrupt() as stop, progress_bar() as progress:
        task = progress.add_task("pretraining", total=n_iterations, completed=start, info="")
        try:
            for pairs in loader:
                iteration += 1
                for group in optimizer.param_groups:
                    group["lr"] = t.lr * lr_factor(iteration - 1, n_iterations,
                                                   t.warmup_iterations, t.schedule)
                gen = torch.Generator().manual_seed(recipe.seed * 1_000_003 + iteration)
                loss = _step(encoder, head, optimizer, scaler, pairs, recipe, gen, dev,
                             amp_dtype)
                if not math.isfinite(loss):
                    raise BioclassError(f"pretraining diverged at iteration {iteration} "
                                        f"(loss {loss}); lower train.lr")
                losses.append(loss)
                progress.update(task, advance=1, info=f"loss {np.mean(losses[-50:]):.4f}")
                if iteration % t.eval_every == 0 or iteration == n_iterations:
                    row = _monitor(encoder, probe, monitor_pairs, recipe, dev, iteration,
                                   float(np.mean(losses)), time.perf_counter() - started)
                    losses.clear()
                    history.append(row)
                    pd.DataFrame(history).to_csv(run_dir / "metrics.csv", index=False)
                    save(iteration)
                    progress.console.print(_describe(row))
                if stop.requested:
                    break
        except RuntimeError:
            if not stop.requested:  # a data-loader worker killed by the same Ctrl-C
                raise
    if stop.requested and iteration < n_iterations:
        save(iteration)
        raise PretrainingInterrupted(
            f"interrupted after iteration {iteration}; continue with: "
            f"bioclass pretrain --resume {run_dir}")
    frame = pd.DataFrame(history)
    plot_pretrain_curves(frame, run_dir / "learning_curve.png")
    console.print(f"saved {run_dir / ENCODER}: start a classifier from it with "
                  f"--set model.init_from={run_dir / ENCODER}")
    return frame


def _encoder_checkpoint(
    encoder: Classifier, recipe: Recipe, recipe_dict: dict[str, Any], frontend: Any,
    iteration: int, history: list[dict[str, Any]], extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return model_checkpoint(
        encoder, recipe.model.name, [], frontend, recipe_dict, None, use_ema=False,
        score_activation="none",
        extra={"kind": "encoder", "iteration": iteration, "history": history,
               "window_seconds": recipe.pretrain.patch_seconds, **(extra or {})},
    )


def _step(
    encoder: Classifier,
    head: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    pairs: torch.Tensor,
    recipe: Recipe,
    gen: torch.Generator,
    dev: torch.device,
    amp_dtype: torch.dtype | None,
) -> float:
    """One optimiser step on a batch of pairs (B, 2, samples). Returns the loss."""
    from bioclass.augment.views import augment_views

    p = recipe.pretrain
    n = pairs.shape[0]
    wave = pairs.to(dev, non_blocking=True).transpose(0, 1).reshape(2 * n, -1)  # (2B, samples)
    with autocast(dev, amp_dtype):
        spec = encoder.spectrogram(wave)  # (2B, samples) -> (2B, 1, frames, mels)
        spec = augment_views(spec, p.views, gen)  # every patch its own draw
        if dev.type == "cuda":
            spec = spec.contiguous(memory_format=torch.channels_last)
        h = encoder.embed_spec(spec)  # (2B, 1, F, M) -> (2B, D)
        z = head(h)  # (2B, D) -> (2B, projection_dim)
        if p.loss == "acl":
            loss = angular_contrastive(z[:n], z[n:], h[:n], h[n:], p.acl_alpha, p.temperature,
                                       p.margin)
        else:
            loss = nt_xent(z[:n], z[n:], p.temperature)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


@torch.no_grad()
def _monitor(
    encoder: Classifier, probe: LabelledProbeSet | None, monitor_pairs: torch.Tensor,
    recipe: Recipe, dev: torch.device, iteration: int, loss: float, elapsed: float,
) -> dict[str, Any]:
    """Alignment/uniformity on fixed pairs; kNN and linear probe when a labelled set is given."""
    encoder.eval()
    n = monitor_pairs.shape[0]
    wave = monitor_pairs.transpose(0, 1).reshape(2 * n, -1).to(dev)
    h = torch.cat([encoder.embed(chunk) for chunk in wave.split(64)]).float().cpu().numpy()
    row: dict[str, Any] = {
        "iteration": iteration, "loss": loss,
        "alignment": alignment(h[:n], h[n:]), "uniformity": uniformity(h),
    }
    if probe is not None:
        row.update(probe_metrics(encoder, probe, recipe.pretrain.knn_k,
                                 recipe.pretrain.probe_epochs, recipe.train.batch_size, dev,
                                 recipe.seed))
    encoder.train()
    row["elapsed_s"] = round(elapsed, 2)
    return row


def _describe(row: dict[str, Any]) -> str:
    loss = "-" if math.isnan(row["loss"]) else f"{row['loss']:.4f}"
    parts = [f"iteration {row['iteration']}: loss {loss}",
             f"alignment {row['alignment']:.3f}", f"uniformity {row['uniformity']:.3f}"]
    for key in ("knn_accuracy", "knn_uar", "probe_accuracy", "probe_uar"):
        if row.get(key) is not None:
            parts.append(f"{key.replace('_', ' ')} {row[key]:.3f}")
    return ", ".join(parts)
