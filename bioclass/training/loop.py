"""`bioclass train`: the supervised recipe of Pellegrini (2021) from recipe to run directory.

One straight line: data -> model -> iterations (SpecAugment, MixUp, balanced batches, EMA) ->
periodic validation of raw and EMA weights -> best checkpoint by the recipe's metric.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bioclass.checkpoint import checkpoint_info, encoder_weights, load_model
from bioclass.core.console import console, progress_bar
from bioclass.core.errors import BioclassError
from bioclass.data.prepare import load_labelled
from bioclass.data.window_dataset import WindowedData
from bioclass.evaluation.evaluate import evaluate_model
from bioclass.evaluation.multilabel import multilabel_metrics
from bioclass.evaluation.plots import plot_confusion, plot_learning_curve
from bioclass.evaluation.report import print_metrics, print_multilabel_metrics
from bioclass.evaluation.thresholds import DEFAULT_THRESHOLD, resolve_thresholds
from bioclass.inference.clips import ClipPooling, clip_window_logits, pool_clips
from bioclass.models import frontend_config, known_model
from bioclass.recipe import Recipe, dump_recipe, load_recipe, recipe_from_dict
from bioclass.recipe.objectives import is_multi_label
from bioclass.runtime import distributed
from bioclass.runtime.bad_files import bad_files_on_refusal, write_bad_files
from bioclass.runtime.device import pick_device
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.training.annotated import load_windows
from bioclass.training.cv import CV_METRICS, cross_validate
from bioclass.training.distill import check_teacher
from bioclass.training.fit import (
    BEST,
    Fit,
    report_calibration,
    store_calibration_and_thresholds,
)

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run produced."""

    run_dir: Path
    best: dict[str, Any]  # iteration, weights ('raw'/'ema'), metric value, full val metrics
    history: pd.DataFrame


def train(
    recipe: Recipe | None, out_dir: str | Path, device: str = "auto", resume: bool = False
) -> TrainResult:
    """Train a classifier as the recipe says, writing everything into `out_dir`.

    What can be checked without the data (the model's name, `model.init_from`, the device) is
    checked before the run directory is made; a run that fails later, before its first
    checkpoint, removes what it wrote (`RunDirectory.kept_once_saved`).

    Args:
        recipe: validated recipe (None when resuming: the saved one is used).
        out_dir: run directory (created; must be empty unless resuming).
        device: 'auto', 'cpu', 'cuda' or 'mps'.
        resume: continue the interrupted run saved in `out_dir`.
    """
    with distributed.process_group(pick_device(device)) as dev:
        return _start(recipe, Path(out_dir), dev, resume)


def _start(recipe: Recipe | None, out_dir: Path, dev: torch.device, resume: bool) -> TrainResult:
    """`train` on this rank (one process, or one of torchrun's)."""
    ranks = distributed.current()
    saved = None
    if resume and (out_dir / "cv").is_dir():
        # A cross-validated run keeps its state per fold: the folds pick up where they were.
        run = RunDirectory.existing(out_dir)
        recipe = load_recipe(run / "recipe.yaml")
    elif resume:
        run, saved = RunDirectory.reopen(out_dir)
        recipe = recipe_from_dict(saved["recipe"], source=str(run / LAST))
        distributed.check_resume(saved)
    if ranks.distributed and recipe.train.cv_folds:
        distributed.refuse(
            "train.cv_folds is not supported under torchrun: cross-validate in one process "
            "(or train each fold's recipe on its own)"
        )
    if ranks.distributed and is_multi_label(recipe):
        # Its window sampler deals no per-rank shares yet: refuse rather than train N copies.
        distributed.refuse(
            "training on annotated recordings (data.annotations, data.reviewed) is not "
            "supported under torchrun yet: run it in one process"
        )
    distributed.check_batch(recipe.train.batch_size, "train.batch_size")
    known_model(recipe.model.name)
    if recipe.model.init_from:  # fail before decoding the data, not after
        encoder_weights(recipe.model.init_from, recipe.model.name, frontend_config(recipe))
    for teacher in recipe.distill.teachers:
        check_teacher(Path(teacher), recipe.audio.sample_rate)
    if not resume:
        # Rank 0 makes (and checks) the folder; the others write nothing into it.
        run = distributed.on_main(lambda: RunDirectory.create(out_dir)) or RunDirectory(out_dir)
    with run.kept_once_saved("train"):
        return _train(recipe, run, dev, saved)


def _train(
    recipe: Recipe, run: RunDirectory, dev: torch.device, saved: dict[str, Any] | None
) -> TrainResult:
    """`train` in its run directory."""
    main = distributed.current().is_main
    distributed.seed_torch(recipe.seed)
    console.print(f"run directory: {run.path}   device: {dev}")
    if is_multi_label(recipe):
        return _train_windows(recipe, run, dev, saved)

    with progress_bar() as progress, bad_files_on_refusal(run):
        task = progress.add_task("decoding clips", total=None, info="")
        clips = load_labelled(
            recipe,
            on_progress=lambda n: progress.advance(task, n),
            on_total=lambda n: progress.update(task, total=n),
        )
    _suggest_for_small_data(recipe, clips.used)
    if recipe.train.cv_folds:  # one process only (refused under torchrun)
        _write_clip_reports(run, recipe, clips.bad, clips.duplicates)
        console.print(
            f"classes: {', '.join(clips.classes)}   clips: {len(clips.used)} in "
            f"{recipe.train.cv_folds} cross-validation folds"
        )
        best = cross_validate(recipe, clips, run, dev)
        best = _report_test(run, recipe, dev, best)
        return TrainResult(run.path, best, pd.read_csv(run / CV_METRICS))
    data = clips.partition((clips.used["split"] == "val").to_numpy())
    if main:
        _write_clip_reports(run, recipe, data.bad, data.duplicates)
        run.write_table("split.csv", data.split)
    n_unlabelled = int((data.train.targets < 0).sum())
    unlabelled = f" (+ {n_unlabelled} unlabelled)" if n_unlabelled else ""
    console.print(
        f"classes: {', '.join(data.classes)}   training clips: "
        f"{len(data.train) - n_unlabelled}{unlabelled}   validation clips: {len(data.val)}"
    )
    fit = Fit(recipe, data, run, dev, saved)
    spec = fit.objective.spec
    why = f" (loss.name {recipe.loss.name})" if recipe.loss.name != spec.name else ""
    # Said out loud: MixUp switches `auto` to BCE, which makes scan's scores sigmoid.
    console.print(f"objective: {spec.name}{why}   scores: {spec.activation.value}")
    fit.run()
    frame = pd.DataFrame(fit.state.history)

    def finish() -> dict[str, Any]:
        _finish(run, frame, fit.state.best, data.classes, recipe.train.metric)
        calibration = store_calibration_and_thresholds(run / BEST, data, recipe, dev)
        report_calibration(run, calibration, fit.state.best)
        return _report_test(run, recipe, dev, fit.state.best)

    # Rank 0 alone selects, calibrates, plots and tests; the others wait for it to be done.
    best = distributed.on_main(finish)
    return TrainResult(run.path, best if best is not None else {}, frame)


def _train_windows(
    recipe: Recipe, run: RunDirectory, dev: torch.device, saved: dict[str, Any] | None
) -> TrainResult:
    """Multi-label training on windows of annotated recordings (`data.annotations`,
    `data.reviewed`, with or without labelled clips)."""
    with console.status("reading annotations, reviews and recordings"), bad_files_on_refusal(run):
        data = load_windows(recipe)
    _write_clip_reports(run, recipe, data.bad, [])
    run.write_table("split.csv", data.split)
    train, val = data.train.corpus, data.val.corpus
    console.print(
        f"classes: {', '.join(data.classes)}   training: {train.stretches['rec'].nunique()} "
        f"recordings, {train.annotated_seconds() / 60:.1f} min annotated, {len(train.boxes)} "
        f"boxes   validation: {val.stretches['rec'].nunique()} recordings, {len(val.boxes)} "
        f"boxes, {len(data.val)} windows"
    )
    fit = Fit(recipe, data, run, dev, saved)
    spec = fit.objective.spec
    why = f" (loss.name {recipe.loss.name})" if recipe.loss.name != spec.name else ""
    console.print(
        f"objective: {spec.name}{why}, multi-label windows   scores: {spec.activation.value}   "
        f"selection: {fit.metric}"
    )
    fit.run()
    frame = pd.DataFrame(fit.state.history)
    best = fit.state.best
    if best is None:
        raise BioclassError("training ended without a validation: set train.eval_every")
    run.write_text("best.json", json.dumps(best, indent=2))
    plot_learning_curve(frame, fit.metric, run / "learning_curve.png")
    print_multilabel_metrics(
        best["metrics"],
        f"Best model (validation {fit.metric}): iteration {best['iteration']}, "
        f"{best['weights']} weights, scores at 0.5",
    )
    console.print(f"saved {run / BEST}")
    calibration = store_calibration_and_thresholds(run / BEST, data, recipe, dev)
    report_calibration(run, calibration, best)
    best = _report_at_thresholds(run, data, recipe, dev, best)
    return TrainResult(run.path, best, frame)


def _report_at_thresholds(
    run: RunDirectory, data: WindowedData, recipe: Recipe, dev: torch.device, best: dict[str, Any]
) -> dict[str, Any]:
    """The validation windows scored as a scan scores them (calibrated, at the fitted
    thresholds): printed and kept in best.json as `at_thresholds`."""
    model, ckpt = load_model(run / BEST)
    info = checkpoint_info(ckpt, run / BEST)
    pooling = ClipPooling("centre")  # a validation window is one window
    logits = clip_window_logits(model.to(dev), data.val, pooling, recipe.train.batch_size * 2, dev)
    scores = pool_clips(logits, info.score_map(), pooling.method, len(data.classes))
    fitted = ckpt.get("thresholds", {})
    thresholds = resolve_thresholds(
        data.classes,
        DEFAULT_THRESHOLD,
        {c: v.get("threshold") for c, v in fitted.items()},
        None,
    )
    metrics = multilabel_metrics(scores, data.val.targets, data.classes, thresholds)
    print_multilabel_metrics(metrics, "Validation windows at the fitted thresholds, calibrated")
    best = {**best, "at_thresholds": metrics}
    run.write_text("best.json", json.dumps(best, indent=2, default=float))
    return best


SMALL_CLASS = 50  # labelled clips per class below which one validation split is unreliable


def _suggest_for_small_data(recipe: Recipe, used: pd.DataFrame) -> None:
    """Say how to select models more robustly when a class has few clips (a validation split
    then holds a handful of them, and a lucky round wins)."""
    t = recipe.train
    if t.cv_folds or t.smoothing > 1:
        return
    per_class = used["label"].dropna().value_counts()
    if per_class.empty or per_class.min() >= SMALL_CLASS:
        return
    console.print(
        f"[yellow]few labelled clips: {per_class.idxmin()} has {per_class.min()} (median "
        f"{int(per_class.median())} per class). A single validation split of so few clips "
        "picks lucky rounds: consider --set train.cv_folds=5 (cross-validated selection) or "
        "--set train.smoothing=3, and the settings of recipes/small_data.yaml"
    )


def _write_clip_reports(
    run: RunDirectory, recipe: Recipe, bad: pd.DataFrame, duplicates: list[list[str]]
) -> None:
    run.write_text("recipe.yaml", dump_recipe(recipe))
    write_bad_files(run, bad, "clip")
    if duplicates:
        rows = [{"set": i, "file": f} for i, group in enumerate(duplicates) for f in group]
        run.write_table("duplicates.csv", pd.DataFrame(rows))


def _report_test(
    run: RunDirectory, recipe: Recipe, dev: torch.device, best: dict[str, Any]
) -> dict[str, Any]:
    """Score the saved model on the label table's held-out `test` rows, when it has any, and
    print it beside the validation figure: the number to quote, as validation chose the model."""
    split = pd.read_csv(run / "split.csv")
    if not (split["split"] == "test").any():
        return best
    metrics, _, bad = evaluate_model(
        run / BEST, run / "split.csv", "test", recipe.train.batch_size * 2, str(dev)
    )
    n_skipped, n_damaged = int((~bad["kept"]).sum()), int(bad["kept"].sum())
    skipped = f", {n_skipped} unreadable skipped" if n_skipped else ""
    skipped += f", {n_damaged} damaged (NaN/Inf set to 0)" if n_damaged else ""
    print_metrics(metrics, f"Held-out test split ({metrics['n_clips']} clips{skipped})")
    keep = ("uar", "map", "accuracy", "n_clips", "per_class", "confusion")
    best = {**best, "test": {k: metrics[k] for k in keep if k in metrics}}
    run.write_text("best.json", json.dumps(best, indent=2, default=float))
    console.print(
        f"validation {recipe.train.metric} {best['value']:.3f}   "
        f"test {recipe.train.metric} {metrics[recipe.train.metric]:.3f}"
    )
    return best


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
