"""`bioclass train`: the supervised recipe of Pellegrini (2021) from recipe to run directory.

One straight line: data -> model -> iterations (SpecAugment, MixUp, balanced batches, EMA) ->
periodic validation of raw and EMA weights -> best checkpoint by the recipe's metric.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bioclass.augment.spec import mixup, spec_augment
from bioclass.checkpoint import (
    CheckpointError,
    atomic_save,
    encoder_weights,
    load_encoder_weights,
    load_model,
    model_checkpoint,
    read_checkpoint,
)
from bioclass.core.console import console, progress_bar
from bioclass.core.errors import BioclassError
from bioclass.data.prepare import PreparedData, prepare_data
from bioclass.data.sampler import BatchSampler
from bioclass.evaluation.metrics import classification_metrics
from bioclass.evaluation.plots import plot_confusion, plot_learning_curve
from bioclass.evaluation.report import print_metrics
from bioclass.evaluation.thresholds import FIT_METHOD, fit_thresholds
from bioclass.inference.clips import predict_clips
from bioclass.models import Classifier, FrontendConfig, create_model, frontend_config
from bioclass.recipe import Recipe, dump_recipe, recipe_from_dict, recipe_to_dict
from bioclass.recipe.schema import AugmentSection
from bioclass.runtime.device import pick_device
from bioclass.runtime.interrupt import graceful_interrupt
from bioclass.runtime.precision import autocast, training_dtype
from bioclass.runtime.schedule import lr_factor
from bioclass.training.ema import WeightEMA
from bioclass.training.objectives import Objective, score_activation

log = logging.getLogger(__name__)

BEST = "model.pt"  # best weights by the recipe's metric: what scan/evaluate use
LAST = "last.pt"  # full training state for --resume


class TrainingInterrupted(BioclassError):
    """Ctrl-C during training; the state was saved for --resume."""


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    best: dict[str, Any]  # iteration, weights ('raw'/'ema'), metric value, full val metrics
    history: pd.DataFrame


def total_iterations(recipe: Recipe, n_train: int) -> int:
    """train.iterations, or train.epochs worth of batches (the paper: 60k iterations)."""
    t = recipe.train
    if t.iterations is not None:
        return t.iterations
    if t.epochs is not None:
        return t.epochs * max(1, math.ceil(n_train / t.batch_size))
    raise BioclassError("the recipe sets neither train.iterations nor train.epochs")


def train(
    recipe: Recipe, out_dir: str | Path, device: str = "auto", resume: bool = False
) -> TrainResult:
    """Train a classifier as the recipe says, writing everything into `out_dir`.

    Args:
        recipe: validated recipe (ignored for its content when resuming: the saved one is used).
        out_dir: run directory (created; must be empty unless resuming).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        resume: continue the interrupted run saved in `out_dir`.
    """
    run_dir = Path(out_dir)
    state = _read_resume_state(run_dir) if resume else None
    if state is not None:
        recipe = recipe_from_dict(state["recipe"], source=str(run_dir / LAST))
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise BioclassError(
            f"{run_dir} already holds files; choose another --out, or --resume {run_dir}"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    if recipe.model.init_from:  # fail before decoding the data, not after
        encoder_weights(recipe.model.init_from, recipe.model.name, frontend_config(recipe))
    torch.manual_seed(recipe.seed)
    console.print(f"run directory: {run_dir}   device: {dev}")

    with progress_bar() as progress:
        task = progress.add_task("decoding clips", total=None, info="")
        data = prepare_data(
            recipe,
            on_progress=lambda n: progress.advance(task, n),
            on_total=lambda n: progress.update(task, total=n),
        )
    _write_data_reports(run_dir, recipe, data)
    n_unlabelled = int((data.train.targets < 0).sum())
    unlabelled = f" (+ {n_unlabelled} unlabelled)" if n_unlabelled else ""
    console.print(
        f"classes: {', '.join(data.classes)}   training clips: "
        f"{len(data.train) - n_unlabelled}{unlabelled}   validation clips: {len(data.val)}"
    )
    return _fit(recipe, data, run_dir, dev, state)


def _read_resume_state(run_dir: Path) -> dict[str, Any]:
    path = run_dir / LAST
    if not path.is_file():
        raise BioclassError(f"nothing to resume: {path} not found")
    try:
        return read_checkpoint(path)
    except CheckpointError as exc:
        raise BioclassError(f"cannot resume: {exc}") from None


def _write_data_reports(run_dir: Path, recipe: Recipe, data: PreparedData) -> None:
    (run_dir / "recipe.yaml").write_text(dump_recipe(recipe), encoding="utf-8")
    data.split.to_csv(run_dir / "split.csv", index=False)
    if len(data.bad):
        data.bad.to_csv(run_dir / "bad_files.csv", index=False)
        console.print(
            f"[yellow]{len(data.bad)} unreadable clip(s) skipped: see {run_dir / 'bad_files.csv'}"
        )
    if data.duplicates:
        rows = [{"set": i, "file": f} for i, group in enumerate(data.duplicates) for f in group]
        pd.DataFrame(rows).to_csv(run_dir / "duplicates.csv", index=False)


def _fit(
    recipe: Recipe,
    data: PreparedData,
    run_dir: Path,
    dev: torch.device,
    state: dict[str, Any] | None,
) -> TrainResult:
    t, g = recipe.train, recipe.augment
    n_iterations = total_iterations(recipe, len(data.train))
    frontend = frontend_config(recipe)
    model = create_model(
        recipe.model.name,
        len(data.classes),
        frontend,
        recipe.model.dropout,
        recipe.model.block_dropout,
    ).to(dev)
    if recipe.model.init_from and state is None:
        n_loaded = load_encoder_weights(model, recipe.model.init_from, recipe.model.name, frontend)
        console.print(f"initialised {n_loaded} encoder tensors from {recipe.model.init_from}")
    objective = Objective.build(recipe, model, n_iterations)
    if objective.head is not None:
        objective.head.to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(
        [*model.parameters(), *objective.parameters()], lr=t.lr, weight_decay=t.weight_decay
    )
    amp_dtype = training_dtype(dev, t.amp)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    # With EMA off the average never starts: only raw weights are validated and saved.
    ema = WeightEMA(model, t.ema_decay, t.ema_start if t.ema else n_iterations)
    eval_model = create_model(
        recipe.model.name,
        len(data.classes),
        frontend,
        recipe.model.dropout,
        recipe.model.block_dropout,
    ).to(dev)
    activation = score_activation(objective.name)
    recipe_dict = recipe_to_dict(recipe)

    start, history, best = 0, [], None
    if state is not None:
        model.load_state_dict(state["weights"])
        if objective.head is not None:
            objective.head.load_state_dict(state["head_weights"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["iteration"])
        ema.load_state(state["ema_weights"], start)
        torch.set_rng_state(state["torch_rng"])
        history, best = list(state["history"]), state["best"]
        console.print(f"resuming at iteration {start} of {n_iterations}")

    n_unlabelled = int(round(t.unlabelled_ratio * t.batch_size)) if objective.name == "clar" else 0
    sampler = BatchSampler(
        data.train.targets, t.batch_size, recipe.seed, recipe.data.balanced, start, n_iterations,
        n_unlabelled=n_unlabelled,
    )
    loader = torch.utils.data.DataLoader(
        data.train,
        batch_sampler=sampler,
        num_workers=t.num_workers,
        pin_memory=dev.type == "cuda",
        persistent_workers=False,
        # A private generator: the loader must not draw from the global RNG (dropout's).
        generator=torch.Generator().manual_seed(recipe.seed),
    )

    def save_last(iteration: int) -> None:
        ckpt = model_checkpoint(
            model,
            recipe.model.name,
            data.classes,
            frontend,
            recipe_dict,
            ema.state,
            use_ema=False,
            score_activation=activation,
            extra={
                "optimizer": optimizer.state_dict(),
                "head_weights": None if objective.head is None else {
                    k: v.detach().cpu() for k, v in objective.head.state_dict().items()},
                "iteration": iteration,
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "best": best,
            },
        )
        atomic_save(ckpt, run_dir / LAST)

    losses: list[float] = []
    iteration = start
    started = time.perf_counter()
    model.train()
    with graceful_interrupt() as stop, progress_bar() as progress:
        task = progress.add_task("training", total=n_iterations, completed=start, info="")
        try:
            for wave, y in loader:
                iteration += 1
                for group in optimizer.param_groups:
                    group["lr"] = t.lr * lr_factor(
                        iteration - 1, n_iterations, t.warmup_iterations, t.schedule
                    )
                rng = np.random.default_rng([recipe.seed, 7, iteration])
                objective.set_mode(model, iteration)
                loss = _step(model, objective, optimizer, scaler, wave, y, g, rng, dev,
                             amp_dtype, iteration)
                ema.update(model, iteration)
                if not math.isfinite(loss):
                    raise BioclassError(
                        f"training diverged at iteration {iteration} (loss {loss}); lower train.lr"
                    )
                losses.append(loss)
                progress.update(task, advance=1, info=f"loss {np.mean(losses[-50:]):.4f}")
                due = iteration % t.eval_every == 0 or iteration == n_iterations
                if due and objective.validates(iteration):
                    rows, best = _validate(
                        model,
                        eval_model,
                        ema,
                        data,
                        recipe,
                        activation,
                        dev,
                        iteration,
                        float(np.mean(losses)) if losses else float("nan"),
                        time.perf_counter() - started,
                        best,
                        run_dir,
                        frontend,
                        recipe_dict,
                    )
                    losses.clear()
                    history.extend(rows)
                    pd.DataFrame(history).to_csv(run_dir / "metrics.csv", index=False)
                    save_last(iteration)
                    summary = ", ".join(
                        f"{r['weights']} {t.metric} {r[t.metric]:.3f}" for r in rows
                    )
                    progress.console.print(f"iteration {iteration}: {summary}")
                elif due:
                    save_last(iteration)  # SupCon stage: nothing to validate yet
                if stop.requested:
                    break
        except RuntimeError:
            if not stop.requested:  # a data-loader worker killed by the same Ctrl-C
                raise
    if stop.requested and iteration < n_iterations:
        save_last(iteration)
        raise TrainingInterrupted(
            f"interrupted after iteration {iteration}; "
            f"continue with: bioclass train --resume {run_dir}"
        )

    frame = pd.DataFrame(history)
    _finish(run_dir, frame, best, data.classes, t.metric)
    _store_thresholds(run_dir / BEST, data, recipe, dev)
    return TrainResult(run_dir, best, frame)


def _store_thresholds(path: Path, data: PreparedData, recipe: Recipe, dev: torch.device) -> None:
    """Fit per-class detection thresholds of the best model on validation clips; store them.

    `bioclass scan` uses them unless the user overrides them (--thresholds).
    """
    model, ckpt = load_model(path)
    scores, targets = predict_clips(
        model.to(dev), data.val, ckpt["score_activation"], recipe.train.batch_size * 2, dev
    )
    ckpt["thresholds"] = fit_thresholds(
        scores, targets, data.classes, recipe.data.background_label
    )
    ckpt["thresholds_method"] = f"{FIT_METHOD} ({len(data.val)} validation clips)"
    atomic_save(ckpt, path)


def _step(
    model: Classifier,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    wave: torch.Tensor,
    y: torch.Tensor,
    g: AugmentSection,
    rng: np.random.Generator,
    dev: torch.device,
    amp_dtype: torch.dtype | None,
    iteration: int,
) -> float:
    """One optimiser step: log-mel, SpecAugment, MixUp, the objective's loss, update.

    Args:
        wave: (B, T) clips, or (B, V, T) augmented views of each clip (clar).
        y: (B,) class indices, -1 for unlabelled clips.

    Returns:
        The loss value.
    """
    wave, y = wave.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
    if wave.dim() == 3:  # views: view-major order, so rows [0, B) and [B, 2B) pair up
        n_views = wave.shape[1]
        wave = wave.transpose(0, 1).reshape(-1, wave.shape[-1])  # (B, V, T) -> (V*B, T)
        y = y.repeat(n_views)
    with autocast(dev, amp_dtype):
        spec = model.spectrogram(wave)  # (B, T) -> (B, 1, frames, mels)
        if g.specaugment:
            spec = spec_augment(spec, g, rng)
        target = None
        if g.mixup_alpha > 0:
            target = F.one_hot(y, model.n_classes).float()
            spec, target = mixup(spec, target, g.mixup_alpha, rng)
        if dev.type == "cuda":
            spec = spec.contiguous(memory_format=torch.channels_last)
        loss = objective.loss(model, spec, y, target, iteration)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _validate(
    model: Classifier,
    eval_model: Classifier,
    ema: WeightEMA,
    data: PreparedData,
    recipe: Recipe,
    activation: str,
    dev: torch.device,
    iteration: int,
    train_loss: float,
    elapsed: float,
    best: dict[str, Any] | None,
    run_dir: Path,
    frontend: FrontendConfig,
    recipe_dict: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Score the validation split with raw (and, once averaging began, EMA) weights.

    Saves `model.pt` whenever a new best value of the recipe's metric is reached.
    """
    metric = recipe.train.metric
    candidates = [("raw", model.state_dict())]
    if ema.active:
        candidates.append(("ema", ema.state))
    rows = []
    for name, weights in candidates:
        eval_model.load_state_dict(weights)
        scores, targets = predict_clips(
            eval_model, data.val, activation, recipe.train.batch_size * 2, dev
        )
        metrics = classification_metrics(scores, targets, data.classes)
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
        if best is None or value > best["value"]:
            best = {
                "iteration": iteration,
                "weights": name,
                "metric": metric,
                "value": value,
                "metrics": metrics,
            }
            ckpt = model_checkpoint(
                model,
                recipe.model.name,
                data.classes,
                frontend,
                recipe_dict,
                ema.state if ema.active else None,
                use_ema=name == "ema",
                score_activation=activation,
                extra={"iteration": iteration, "val_metrics": metrics},
            )
            atomic_save(ckpt, run_dir / BEST)
    return rows, best


def _finish(
    run_dir: Path,
    history: pd.DataFrame,
    best: dict[str, Any] | None,
    classes: list[str],
    metric: str,
) -> None:
    if best is None:
        raise BioclassError("training ended without a validation: set train.eval_every")
    (run_dir / "best.json").write_text(json.dumps(best, indent=2), encoding="utf-8")
    plot_learning_curve(history, metric, run_dir / "learning_curve.png")
    plot_confusion(
        np.array(best["metrics"]["confusion"]),
        classes,
        run_dir / "confusion_matrix.png",
        f"Validation, {best['weights']} weights, iteration {best['iteration']}",
    )
    print_metrics(
        best["metrics"],
        f"Best model (validation {metric.upper()}): iteration {best['iteration']}, "
        f"{best['weights']} weights",
    )
    console.print(f"saved {run_dir / BEST}")
