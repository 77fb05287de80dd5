"""One training run of the supervised recipe (Pellegrini 2021) on prepared data: the step
(SpecAugment, MixUp, the objective's loss, EMA) and the validation of raw and EMA weights that
`run_loop` calls, model selection, and calibration, then threshold fitting, on the best model.
"""

from __future__ import annotations

import copy
import json
import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bioclass.augment.spec import mixup, spec_augment
from bioclass.checkpoint import (
    atomic_save,
    checkpoint_info,
    load_encoder_weights,
    load_model,
    model_checkpoint,
)
from bioclass.core.activation import Activation, ScoreMap
from bioclass.core.console import console
from bioclass.core.errors import BioclassError
from bioclass.data.prepare import PreparedData
from bioclass.data.sampler import BatchSampler
from bioclass.data.window_dataset import WindowedData
from bioclass.data.window_sampler import WindowBatchSampler
from bioclass.evaluation.calibration import CalibrationFit, fit_calibration
from bioclass.evaluation.metrics import classification_metrics
from bioclass.evaluation.multilabel import multilabel_metrics
from bioclass.evaluation.plots import plot_reliability
from bioclass.evaluation.thresholds import FIT_METHOD, fit_thresholds
from bioclass.inference.clips import ClipPooling, clip_window_logits, pool_clips
from bioclass.models import frontend_config, model_from_recipe
from bioclass.recipe import Recipe, recipe_to_dict
from bioclass.recipe.objectives import distils, selection_metric, uses_unlabelled
from bioclass.runtime import distributed
from bioclass.runtime.loop import LoopPlan, run_loop
from bioclass.runtime.precision import autocast, training_dtype
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.runtime.state import TrainingState
from bioclass.runtime.workers import loader_workers
from bioclass.training.distill import (
    AugmentDraws,
    Teachers,
    distillation_loss,
    labelled_loss,
    labelled_share,
)
from bioclass.training.ema import WeightEMA
from bioclass.training.objectives import Objective

log = logging.getLogger(__name__)

BEST = "model.pt"  # best weights by the recipe's metric: what scan/evaluate use
CALIBRATION_PNG = "calibration.png"  # reliability diagram before and after calibration


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


class Fit:
    """One training run on prepared data: the step and validation `run_loop` calls.

    Args:
        recipe, data, run, dev: what to train, on what (labelled clips, or multi-label windows
            of annotated recordings), where to write, on which device.
        saved: the state of an interrupted run to resume, or None.
        validate: False trains without validating (cross-validation's final model).
        keep_threshold_scores: keep each validation's window logits (`threshold_logits`), for
            cross-validation's out-of-fold calibration and thresholds.
    """

    def __init__(
        self,
        recipe: Recipe,
        data: PreparedData | WindowedData,
        run: RunDirectory,
        dev: torch.device,
        saved: dict[str, Any] | None,
        validate: bool = True,
        keep_threshold_scores: bool = False,
    ) -> None:
        t = recipe.train
        self.recipe, self.data, self.rundir, self.dev = recipe, data, run, dev
        self.multi_label = isinstance(data, WindowedData)
        self.metric = selection_metric(recipe)
        self.validate = validate
        self.keep_threshold_scores = keep_threshold_scores
        # (iteration, weights) -> (n_val, C) validation clip scores pooled as validation pools
        # them, and each validation clip's (K_i, C) window logits: calibration is fitted on
        # those and thresholds on the calibrated scores (kept with `keep_threshold_scores`).
        self.metric_scores: dict[tuple[int, str], np.ndarray] = {}
        self.threshold_logits: dict[tuple[int, str], list[torch.Tensor]] = {}
        self.on_scores: Callable[[], None] | None = None  # told when those are updated
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
        self.teachers: Teachers | None = None
        if distils(recipe):
            self.teachers = Teachers.load(
                recipe.distill.teachers, list(data.classes), recipe.audio.sample_rate, dev
            )
            console.print(f"distilling from {self.teachers.describe()}")
        ranks = distributed.current()
        if ranks.distributed:
            # Batch statistics of the global batch, as one process of the whole batch has.
            distributed.sync_batch_norm(self.model)
        self._ddp: nn.Module | None = None  # the model under DDP (several ranks), made lazily
        self._ddp_frozen = False
        self.objective = Objective.build(recipe, self.model, n_iterations)
        if self.objective.head is not None:
            self.objective.head.to(dev)
            if ranks.distributed:
                distributed.sync_batch_norm(self.objective.head)
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
            distributed.restore_rank_rng(saved)
            self.ema.load_state(saved["ema_weights"], self.state.iteration)
            console.print(f"resuming at iteration {self.state.iteration} of {n_iterations}")

    def run(self) -> None:
        """Train from the current state to the last iteration."""
        t, recipe = self.recipe.train, self.recipe
        n_unlabelled = (
            int(round(t.unlabelled_ratio * t.batch_size)) if uses_unlabelled(recipe) else 0
        )
        if self.multi_label:
            sampler = WindowBatchSampler(
                self.data.train.corpus,
                t.batch_size,
                recipe.seed,
                recipe.data.balanced,
                recipe.data.random_windows,
                self.state.iteration,
                self.plan.n_iterations,
            )
        else:
            sampler = BatchSampler(
                self.data.train.targets,
                t.batch_size,
                recipe.seed,
                recipe.data.balanced,
                self.state.iteration,
                self.plan.n_iterations,
                n_unlabelled=n_unlabelled,
                rank=distributed.current().rank,
                world_size=distributed.current().world_size,
            )
        loader = torch.utils.data.DataLoader(
            self.data.train,
            batch_sampler=sampler,
            num_workers=loader_workers(t.num_workers),
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
                class indices, -1 for unlabelled clips, or (B, C) multi-hot targets of
                multi-label windows.
        """
        wave, y = batch
        # The augmentation draws of step i depend on the seed and i only: resumable exactly.
        rng = np.random.default_rng(distributed.rank_key(self.recipe.seed, 7, iteration))
        self.objective.set_mode(self.model, iteration)
        wave, y = self._on_device(wave, y)
        if distributed.current().distributed:
            loss = self._distributed_loss(wave, y, rng, iteration)
        else:
            with autocast(self.dev, self.amp_dtype):
                loss = self.batch_loss(wave, y, rng, iteration)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if distributed.current().is_main:  # only rank 0 validates and saves the average
            self.ema.update(self.model, iteration)
        return float(loss.detach())

    def _distributed_loss(
        self, wave: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, iteration: int
    ) -> torch.Tensor:
        """The loss through DistributedDataParallel, which averages the gradients over ranks.

        DDP fixes the trainable parameters when it is made, so it is made again when the
        encoder freezes (a staged objective's second stage)."""
        frozen = self.objective.frozen(iteration)
        if self._ddp is None or frozen != self._ddp_frozen:
            o = self.objective
            unused = o.head is not None and o.freeze_from is not None
            self._ddp = distributed.wrap(_StepLoss(self), self.dev, find_unused=unused)
            self._ddp_frozen = frozen
        return self._ddp(wave, y, rng, iteration)

    def _on_device(self, wave: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch on the device, views flattened into rows."""
        wave = wave.to(self.dev, non_blocking=True)
        y = y.to(self.dev, non_blocking=True)
        if wave.dim() == 3:  # views: view-major order, so rows [0, B) and [B, 2B) pair up
            n_views = wave.shape[1]
            wave = wave.transpose(0, 1).reshape(-1, wave.shape[-1])  # (B, V, T) -> (V*B, T)
            y = y.repeat(n_views)
        return wave, y

    def batch_loss(
        self, wave: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, iteration: int
    ) -> torch.Tensor:
        """The loss of one batch: the objective's, or with teachers, distillation's."""
        if self.teachers is None:
            spec, target = self._augmented(wave, y, rng)
            return self.objective.loss(self.model, spec, y, target, iteration)
        g, d = self.recipe.augment, self.recipe.distill
        draws = AugmentDraws()
        spec, target = self._augmented(wave, y, rng, draws)
        teacher = self.teachers.scores(wave, g, draws, spec.shape, d.temperature)
        logits = self.model.classify(spec)
        share = labelled_share(y, g, draws, spec.shape[0])
        activation = self.objective.spec.activation
        labels = labelled_loss(logits, y, target, share, activation)
        return distillation_loss(logits, teacher, labels, d.weight, d.temperature, activation)

    def _augmented(
        self,
        wave: torch.Tensor,
        y: torch.Tensor,
        rng: np.random.Generator,
        draws: AugmentDraws | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-mels with SpecAugment and MixUp as the recipe says, and the soft targets (MixUp's,
        or the multi-hot targets of multi-label windows). `draws` keeps the generator's state
        before each augmentation, for teachers to replay."""
        g = self.recipe.augment
        spec = self.model.spectrogram(wave)  # (B, T) -> (B, 1, frames, mels)
        if g.specaugment:
            if draws is not None:
                draws.specaugment = copy.deepcopy(rng)
            spec = spec_augment(spec, g, rng)
        target = y.float() if y.dim() == 2 else None  # multi-hot windows
        if g.mixup_alpha > 0:
            if target is None:
                # Unlabelled rows (y = -1, distillation) have no class: a row of zeros.
                labelled = (y >= 0).float().unsqueeze(1)
                target = F.one_hot(y.clamp(min=0), self.model.n_classes).float() * labelled
            if draws is not None:
                draws.mixup = copy.deepcopy(rng)
            union = g.mixup_targets == "union"
            spec, target = mixup(spec, target, g.mixup_alpha, rng, union=union)
        if self.dev.type == "cuda":
            spec = spec.contiguous(memory_format=torch.channels_last)
        return spec, target

    def evaluate(self, iteration: int, train_loss: float, elapsed: float) -> list[dict] | None:
        """Score the validation split with raw (and, once averaging began, EMA) weights; save
        `model.pt` whenever the recipe's metric reaches a new best. Nothing during a SupCon
        stage, where the classifier means nothing yet."""
        if not self.validate or not self.objective.validates(iteration):
            return None
        metric = self.metric
        candidates = [("raw", self.model.state_dict())]
        if self.ema.active:
            candidates.append(("ema", self.ema.state))
        rows = []
        pooling, n_classes = clip_pooling(self.recipe), len(self.data.classes)
        for name, weights in candidates:
            # A second model takes the weights, so the one being trained keeps its state.
            self.eval_model.load_state_dict(weights)
            logits = clip_window_logits(
                self.eval_model, self.data.val, pooling, self.recipe.train.batch_size * 2, self.dev
            )
            scores = pool_clips(logits, self.activation, pooling.method, n_classes)
            if self.keep_threshold_scores:
                self.metric_scores[(iteration, name)] = scores
                self.threshold_logits[(iteration, name)] = logits
            if self.multi_label:
                metrics = multilabel_metrics(scores, self.data.val.targets, self.data.classes)
                summary = {k: metrics[k] for k in ("map", "auc", "f1")}
            else:
                metrics = classification_metrics(scores, self.data.val.targets, self.data.classes)
                summary = {k: metrics[k] for k in ("uar", "map", "accuracy")}
            value = self._selection_value(name, metrics[metric])
            if self.keep_threshold_scores and self.on_scores is not None:
                self.on_scores()
            rows.append(
                {
                    "iteration": iteration,
                    "weights": name,
                    "train_loss": train_loss,
                    **summary,
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

    def _selection_value(self, weights: str, value: float | None) -> float:
        t = self.recipe.train
        return selection_value(self.state.history, weights, self.metric, value, t.smoothing)

    def describe(self, iteration: int, rows: list[dict]) -> str:
        metric = self.metric
        summary = ", ".join(f"{r['weights']} {metric} {_number(r[metric])}" for r in rows)
        return f"iteration {iteration}: {summary}"

    def save(self, state: TrainingState) -> None:
        """last.pt: the raw weights, the EMA and everything --resume needs (rank 0 writes)."""
        extra = {
            **state.capture(self.optimizer, self.objective.head),
            **distributed.rank_state(),
        }
        if distributed.current().is_main:
            self.rundir.save_checkpoint(LAST, self._checkpoint(self.ema.state, False, extra))

    def save_model(self, run: RunDirectory, use_ema: bool, extra: dict[str, Any]) -> None:
        """model.pt in `run` from the weights as they are now (the raw or the EMA weights for
        inference), for a run that selects its model without validating it."""
        ema = self.ema.state if use_ema else None
        run.save_checkpoint(BEST, self._checkpoint(ema, use_ema, extra))

    def _checkpoint(
        self, ema_state: dict[str, torch.Tensor] | None, use_ema: bool, extra: dict[str, Any]
    ) -> dict[str, Any]:
        """The model's checkpoint with the trained (raw) weights and, if given, the EMA."""
        if self.multi_label:  # sigmoid scores of classes that may co-occur (scan reads sigmoid)
            extra = {**extra, "multi_label": True}
        if self.teachers is not None:
            extra = {**extra, "distilled_from": self.teachers.provenance()}
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


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


class _StepLoss(nn.Module):
    """The model and the objective's head as one module whose forward is the batch loss (from
    the waveforms on): the shape DistributedDataParallel wraps, as it synchronises the gradients
    of what its forward used."""

    def __init__(self, fit: Fit) -> None:
        super().__init__()
        self.model = fit.model
        self.head = fit.objective.head
        self.fit = [fit]  # a list: not a submodule

    def forward(
        self, wave: torch.Tensor, y: torch.Tensor, rng: np.random.Generator, iteration: int
    ) -> torch.Tensor:
        fit = self.fit[0]
        with autocast(fit.dev, fit.amp_dtype):
            return fit.batch_loss(wave, y, rng, iteration)


def selection_value(
    history: list[dict[str, Any]], weights: str, metric: str, value: float | None, window: int
) -> float:
    """The figure a model is selected by: this validation's `value` of `metric`, averaged with
    the previous `window - 1` validations of the same weights in `history`, so one lucky round
    on a few clips does not win (-inf where the metric is undefined)."""
    earlier = [r[metric] for r in history if r["weights"] == weights]
    recent = [*earlier[max(0, len(earlier) - (window - 1)) :], value]
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in recent):
        return float("-inf")
    return float(np.mean(recent))


def calibrate_and_fit_thresholds(
    window_logits: list[torch.Tensor],
    targets: np.ndarray,
    classes: list[str],
    recipe: Recipe,
    activation: Activation | str,
    clips: str,
) -> tuple[CalibrationFit | None, dict[str, Any], str]:
    """Calibration (unless `train.calibration: none`), then thresholds fitted on the
    calibrated scores.

    The order matters: a scan thresholds calibrated scores, so the thresholds must be fitted on
    the same calibrated scores (fitted on raw ones, they would sit at another point of the
    precision/recall curve).

    Args:
        window_logits: each validation clip's (K_i, C) window logits (the windows of
            `threshold_pooling`, which are validation's windows too).
        targets: (N,) their true class indices.
        clips: which clips these are, for the checkpoint (e.g. "120 validation clips").

    Returns:
        (the calibration fit or None, the thresholds, how the thresholds were fitted)
    """
    pooling = threshold_pooling(recipe)
    fit = None
    if recipe.train.calibration != "none":
        fit = fit_calibration(
            window_logits,
            targets,
            activation,
            f"{clips}, mean window logits per clip",
            per_class=recipe.train.calibration == "per_class",
        )
    score_map = ScoreMap(Activation.parse(activation), fit.calibration if fit else None)
    scores = pool_clips(window_logits, score_map, pooling.method, len(classes))
    thresholds = fit_thresholds(scores, targets, classes, recipe.data.background_label)
    scored = "calibrated" if fit else "uncalibrated"
    method = f"{FIT_METHOD} ({clips}, {scored} scores, {pooling.method} over windows)"
    return fit, thresholds, method


def store_calibration_and_thresholds(
    path: Path, data: PreparedData | WindowedData, recipe: Recipe, dev: torch.device
) -> CalibrationFit | None:
    """Fit the best model's calibration on the validation clips, then its per-class detection
    thresholds on the calibrated scores; store both in the checkpoint.

    `bioclass scan` uses them unless the user overrides them (--thresholds, --calibration off).
    Only the best model is touched: model selection (metrics.csv) saw raw scores.
    """
    model, ckpt = load_model(path)
    activation = checkpoint_info(ckpt, path).activation
    logits = clip_window_logits(
        model.to(dev), data.val, threshold_pooling(recipe), recipe.train.batch_size * 2, dev
    )
    fit, thresholds, method = calibrate_and_fit_thresholds(
        logits,
        data.val.targets,
        data.classes,
        recipe,
        activation,
        f"{len(data.val)} validation {'windows' if isinstance(data, WindowedData) else 'clips'}",
    )
    if fit is not None:
        ckpt["calibration"] = fit.calibration.to_dict()
    ckpt["thresholds"] = thresholds
    ckpt["thresholds_method"] = method
    atomic_save(ckpt, path)
    return fit


def report_calibration(run: RunDirectory, fit: CalibrationFit | None, best: dict[str, Any]) -> None:
    """Print the ECE before and after, add the calibration to best.json (`best`, updated in
    place) and draw calibration.png (nothing with `train.calibration: none`)."""
    if fit is None:
        return
    c = fit.calibration
    if c.method == "temperature":
        fitted = f"T = {c.temperature:.3f}"
    elif len(set(c.a)) == 1 and len(set(c.b)) == 1:
        fitted = f"a = {c.a[0]:.3f}, b = {c.b[0]:.3f} for every class"
    else:
        fitted = "a, b per class"
    best["calibration"] = c.to_dict()
    run.write_text("best.json", json.dumps(best, indent=2, default=float))
    plot_reliability(
        (fit.before.confidence, fit.before.frequency, fit.before.counts, fit.before.ece),
        (fit.after.confidence, fit.after.frequency, fit.after.counts, fit.after.ece),
        run / CALIBRATION_PNG,
        f"Reliability: {c.fitted_on.split(',')[0]}",
    )
    console.print(
        f"calibration: {c.method} ({fitted}) on {c.fitted_on}: "
        f"ECE {c.ece_before:.3f} -> {c.ece_after:.3f}"
    )
