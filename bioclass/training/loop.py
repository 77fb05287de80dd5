"""`bioclass train`: the supervised recipe of Pellegrini (2021) from recipe to run directory.

One straight line: data -> model -> iterations (SpecAugment, MixUp, balanced batches, EMA) ->
periodic validation of raw and EMA weights -> best checkpoint by the recipe's metric.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bioclass.augment.spec import mixup, spec_augment
from bioclass.checkpoint import (
    atomic_save,
    checkpoint_info,
    encoder_weights,
    load_encoder_weights,
    load_model,
    model_checkpoint,
)
from bioclass.core.console import console, progress_bar
from bioclass.core.errors import BioclassError
from bioclass.data.prepare import PreparedData, prepare_data
from bioclass.data.sampler import BatchSampler
from bioclass.evaluation.metrics import classification_metrics
from bioclass.evaluation.plots import plot_confusion, plot_learning_curve
from bioclass.evaluation.report import print_metrics
from bioclass.evaluation.thresholds import FIT_METHOD, fit_thresholds
from bioclass.inference.clips import ClipPooling, predict_clips
from bioclass.models import frontend_config, model_from_recipe
from bioclass.recipe import Recipe, dump_recipe, recipe_from_dict, recipe_to_dict
from bioclass.runtime.device import pick_device
from bioclass.runtime.loop import LoopPlan, run_loop
from bioclass.runtime.precision import autocast, training_dtype
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.runtime.state import TrainingState
from bioclass.training.ema import WeightEMA
from bioclass.training.objectives import Objective

log = logging.getLogger(__name__)

BEST = "model.pt"  # best weights by the recipe's metric: what scan/evaluate use


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    best: dict[str, Any]  # iteration, weights ('raw'/'ema'), metric value, full val metrics
    history: pd.DataFrame


def clip_pooling(recipe: Recipe) -> ClipPooling:
    """How validation and threshold fitting score clips longer than the window."""
    return ClipPooling(recipe.train.pooling, recipe.train.pooling_hop)


def threshold_pooling(recipe: Recipe) -> ClipPooling:
    """How threshold fitting scores clips longer than the window.

    A scan reports a class where any window's score reaches its threshold, so a long clip's
    score is the maximum over its windows (the scan's own decision for that clip), whatever
    pooling ranks models in validation: a mean would fit thresholds too low for single windows
    (on the quickstart, mean-fitted thresholds let trill through 13 times for 7 calls).
    """
    pooling = clip_pooling(recipe)
    if pooling.method == "centre":
        return pooling
    return ClipPooling("max_prob", pooling.hop_fraction)


def total_iterations(recipe: Recipe, n_train: int) -> int:
    """train.iterations, or train.epochs worth of batches (the paper: 60k iterations)."""
    t = recipe.train
    if t.iterations is not None:
        return t.iterations
    if t.epochs is not None:
        return t.epochs * max(1, math.ceil(n_train / t.batch_size))
    raise BioclassError("the recipe sets neither train.iterations nor train.epochs")


def train(
    recipe: Recipe | None, out_dir: str | Path, device: str = "auto", resume: bool = False
) -> TrainResult:
    """Train a classifier as the recipe says, writing everything into `out_dir`.

    Args:
        recipe: validated recipe (None when resuming: the saved one is used).
        out_dir: run directory (created; must be empty unless resuming).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        resume: continue the interrupted run saved in `out_dir`.
    """
    saved = None
    if resume:
        run, saved = RunDirectory.reopen(out_dir)
        recipe = recipe_from_dict(saved["recipe"], source=str(run / LAST))
    else:
        run = RunDirectory.create(out_dir)
    dev = pick_device(device)
    if recipe.model.init_from:  # fail before decoding the data, not after
        encoder_weights(recipe.model.init_from, recipe.model.name, frontend_config(recipe))
    torch.manual_seed(recipe.seed)
    console.print(f"run directory: {run.path}   device: {dev}")

    with progress_bar() as progress:
        task = progress.add_task("decoding clips", total=None, info="")
        data = prepare_data(
            recipe,
            on_progress=lambda n: progress.advance(task, n),
            on_total=lambda n: progress.update(task, total=n),
        )
    _write_data_reports(run, recipe, data)
    n_unlabelled = int((data.train.targets < 0).sum())
    unlabelled = f" (+ {n_unlabelled} unlabelled)" if n_unlabelled else ""
    console.print(
        f"classes: {', '.join(data.classes)}   training clips: "
        f"{len(data.train) - n_unlabelled}{unlabelled}   validation clips: {len(data.val)}"
    )
    fit = _Fit(recipe, data, run, dev, saved)
    spec = fit.objective.spec
    why = f" (loss.name {recipe.loss.name})" if recipe.loss.name != spec.name else ""
    # Said out loud: MixUp switches `auto` to BCE, which makes scan's scores sigmoid.
    console.print(f"objective: {spec.name}{why}   scores: {spec.activation.value}")
    fit.run()
    frame = pd.DataFrame(fit.state.history)
    _finish(run, frame, fit.state.best, data.classes, recipe.train.metric)
    _store_thresholds(run / BEST, data, recipe, dev)
    return TrainResult(run.path, fit.state.best, frame)


def _write_data_reports(run: RunDirectory, recipe: Recipe, data: PreparedData) -> None:
    run.write_text("recipe.yaml", dump_recipe(recipe))
    run.write_table("split.csv", data.split)
    if len(data.bad):
        path = run.write_table("bad_files.csv", data.bad)
        console.print(f"[yellow]{len(data.bad)} unreadable clip(s) skipped: see {path}")
    if data.duplicates:
        rows = [{"set": i, "file": f} for i, group in enumerate(data.duplicates) for f in group]
        run.write_table("duplicates.csv", pd.DataFrame(rows))


class _Fit:
    """One training run on prepared data: the step and validation `run_loop` calls."""

    def __init__(
        self,
        recipe: Recipe,
        data: PreparedData,
        run: RunDirectory,
        dev: torch.device,
        saved: dict[str, Any] | None,
    ) -> None:
        t = recipe.train
        self.recipe, self.data, self.rundir, self.dev = recipe, data, run, dev
        n_iterations = total_iterations(recipe, len(data.train))
        self.plan = LoopPlan(
            "training", "train", n_iterations, t.lr, t.warmup_iterations, t.schedule, t.eval_every
        )
        self.frontend = frontend_config(recipe)
        self.model = model_from_recipe(recipe, len(data.classes)).to(dev)
        if recipe.model.init_from and saved is None:
            n_loaded = load_encoder_weights(
                self.model, recipe.model.init_from, recipe.model.name, self.frontend
            )
            console.print(f"initialised {n_loaded} encoder tensors from {recipe.model.init_from}")
        self.objective = Objective.build(recipe, self.model, n_iterations)
        if self.objective.head is not None:
            self.objective.head.to(dev)
        if dev.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(
            [*self.model.parameters(), *self.objective.parameters()],
            lr=t.lr,
            weight_decay=t.weight_decay,
        )
        self.amp_dtype = training_dtype(dev, t.amp)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        # With EMA off the average never starts: only raw weights are validated and saved.
        self.ema = WeightEMA(self.model, t.ema_decay, t.ema_start if t.ema else n_iterations)
        # Validation loads raw or EMA weights into a second copy, leaving the trained one as is.
        self.eval_model = model_from_recipe(recipe, len(data.classes)).to(dev)
        self.activation = self.objective.spec.activation.value
        self.recipe_dict = recipe_to_dict(recipe)
        self.state = TrainingState()
        if saved is not None:
            self.state = TrainingState.from_checkpoint(saved)
            self.model.load_state_dict(saved["weights"])
            self.state.restore(self.optimizer, self.objective.head)
            self.ema.load_state(saved["ema_weights"], self.state.iteration)
            console.print(f"resuming at iteration {self.state.iteration} of {n_iterations}")

    def run(self) -> None:
        """Train from the current state to the last iteration."""
        t, recipe = self.recipe.train, self.recipe
        n_unlabelled = (
            int(round(t.unlabelled_ratio * t.batch_size))
            if self.objective.spec.learns_from_unlabelled
            else 0
        )
        sampler = BatchSampler(
            self.data.train.targets,
            t.batch_size,
            recipe.seed,
            recipe.data.balanced,
            self.state.iteration,
            self.plan.n_iterations,
            n_unlabelled=n_unlabelled,
        )
        loader = torch.utils.data.DataLoader(
            self.data.train,
            batch_sampler=sampler,
            num_workers=t.num_workers,
            pin_memory=self.dev.type == "cuda",
            persistent_workers=False,
            # A private generator: the loader must not draw from the global RNG (dropout's).
            generator=torch.Generator().manual_seed(recipe.seed),
        )
        self.model.train()
        run_loop(self.plan, loader, self.optimizer, self, self.state, self.rundir)

    def step(self, iteration: int, batch: tuple[torch.Tensor, torch.Tensor]) -> float:
        """One optimiser step (log-mel, SpecAugment, MixUp, the objective's loss, update), then
        the EMA update.

        Args:
            batch: (B, T) clips, or (B, V, T) augmented views of each clip (clar), and (B,)
                class indices, -1 for unlabelled clips.
        """
        wave, y = batch
        # The augmentation draws of step i depend on the seed and i only: resumable exactly.
        rng = np.random.default_rng([self.recipe.seed, 7, iteration])
        self.objective.set_mode(self.model, iteration)
        wave, y = self._on_device(wave, y)
        with autocast(self.dev, self.amp_dtype):
            spec, target = self._augmented(wave, y, rng)
            loss = self.objective.loss(self.model, spec, y, target, iteration)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.ema.update(self.model, iteration)
        return float(loss.detach())

    def _on_device(self, wave: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch on the device, views flattened into rows."""
        wave = wave.to(self.dev, non_blocking=True)
        y = y.to(self.dev, non_blocking=True)
        if wave.dim() == 3:  # views: view-major order, so rows [0, B) and [B, 2B) pair up
            n_views = wave.shape[1]
            wave = wave.transpose(0, 1).reshape(-1, wave.shape[-1])  # (B, V, T) -> (V*B, T)
            y = y.repeat(n_views)
        return wave, y

    def _augmented(
        self, wave: torch.Tensor, y: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-mels with SpecAugment and MixUp as the recipe says, and MixUp's soft targets."""
        g = self.recipe.augment
        spec = self.model.spectrogram(wave)  # (B, T) -> (B, 1, frames, mels)
        if g.specaugment:
            spec = spec_augment(spec, g, rng)
        target = None
        if g.mixup_alpha > 0:
            target = F.one_hot(y, self.model.n_classes).float()
            spec, target = mixup(spec, target, g.mixup_alpha, rng)
        if self.dev.type == "cuda":
            spec = spec.contiguous(memory_format=torch.channels_last)
        return spec, target

    def evaluate(self, iteration: int, train_loss: float, elapsed: float) -> list[dict] | None:
        """Score the validation split with raw (and, once averaging began, EMA) weights; save
        `model.pt` whenever the recipe's metric reaches a new best. Nothing during a SupCon
        stage, where the classifier means nothing yet."""
        if not self.objective.validates(iteration):
            return None
        metric = self.recipe.train.metric
        candidates = [("raw", self.model.state_dict())]
        if self.ema.active:
            candidates.append(("ema", self.ema.state))
        rows = []
        for name, weights in candidates:
            # A second model takes the weights, so the one being trained keeps its state.
            self.eval_model.load_state_dict(weights)
            scores, targets = predict_clips(
                self.eval_model,
                self.data.val,
                self.activation,
                self.recipe.train.batch_size * 2,
                self.dev,
                pooling=clip_pooling(self.recipe),
            )
            metrics = classification_metrics(scores, targets, self.data.classes)
            value = metrics[metric] if metrics[metric] is not None else float("-inf")
            rows.append(
                {
                    "iteration": iteration,
                    "weights": name,
                    "train_loss": train_loss,
                    "uar": metrics["uar"],
                    "map": metrics["map"],
                    "accuracy": metrics["accuracy"],
                    "elapsed_s": round(elapsed, 2),
                }
            )
            best = self.state.best
            if best is None or value > best["value"]:
                self.state.best = {
                    "iteration": iteration,
                    "weights": name,
                    "metric": metric,
                    "value": value,
                    "metrics": metrics,
                }
                ema = self.ema.state if self.ema.active else None
                extra = {"iteration": iteration, "val_metrics": metrics}
                self.rundir.save_checkpoint(BEST, self._checkpoint(ema, name == "ema", extra))
        return rows

    def describe(self, iteration: int, rows: list[dict]) -> str:
        metric = self.recipe.train.metric
        summary = ", ".join(f"{r['weights']} {metric} {r[metric]:.3f}" for r in rows)
        return f"iteration {iteration}: {summary}"

    def save(self, state: TrainingState) -> None:
        """last.pt: the raw weights, the EMA and everything --resume needs."""
        extra = state.capture(self.optimizer, self.objective.head)
        self.rundir.save_checkpoint(LAST, self._checkpoint(self.ema.state, False, extra))

    def _checkpoint(
        self, ema_state: dict[str, torch.Tensor] | None, use_ema: bool, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The model's checkpoint with the trained (raw) weights and, if given, the EMA."""
        return model_checkpoint(
            self.model,
            self.recipe.model.name,
            self.data.classes,
            self.frontend,
            self.recipe_dict,
            ema_state,
            use_ema=use_ema,
            score_activation=self.activation,
            extra=extra,
        )


def _store_thresholds(path: Path, data: PreparedData, recipe: Recipe, dev: torch.device) -> None:
    """Fit per-class detection thresholds of the best model on validation clips; store them.

    `bioclass scan` uses them unless the user overrides them (--thresholds).
    """
    model, ckpt = load_model(path)
    activation = checkpoint_info(ckpt, path).activation
    pooling = threshold_pooling(recipe)
    scores, targets = predict_clips(
        model.to(dev), data.val, activation, recipe.train.batch_size * 2, dev, pooling=pooling
    )
    ckpt["thresholds"] = fit_thresholds(scores, targets, data.classes, recipe.data.background_label)
    ckpt["thresholds_method"] = (
        f"{FIT_METHOD} ({len(data.val)} validation clips, {pooling.method} over windows)"
    )
    atomic_save(ckpt, path)


def _finish(
    run: RunDirectory,
    history: pd.DataFrame,
    best: dict[str, Any] | None,
    classes: list[str],
    metric: str,
) -> None:
    if best is None:
        raise BioclassError("training ended without a validation: set train.eval_every")
    run.write_text("best.json", json.dumps(best, indent=2))
    plot_learning_curve(history, metric, run / "learning_curve.png")
    plot_confusion(
        np.array(best["metrics"]["confusion"]),
        classes,
        run / "confusion_matrix.png",
        f"Validation, {best['weights']} weights, iteration {best['iteration']}",
    )
    print_metrics(
        best["metrics"],
        f"Best model (validation {metric.upper()}): iteration {best['iteration']}, "
        f"{best['weights']} weights",
    )
    console.print(f"saved {run / BEST}")
