"""`train.cv_folds`: model selection by grouped, stratified K-fold cross-validation, for the
small labelled sets where one validation split of a few clips picks a lucky round.

Each fold trains on the other folds' groups and validates on its own, with the recipe's
schedule. The validation rounds are averaged over the folds (mean and standard deviation per
iteration, raw and EMA weights); the round with the best mean metric sets the iteration count
and the weights. The final model then trains on every train and validation clip for that
count, with no validation of its own: its calibration, then its thresholds (on the calibrated
scores), are fitted on the folds' out-of-fold window logits at the chosen round, and the
cross-validated metrics stand as its estimate.

An interrupted cross-validation resumes where it stopped: finished folds are read back from
their folders (metrics, out-of-fold scores and logits), an unfinished fold or the final model
continues from its own `last.pt`.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bioclass.checkpoint import atomic_save, read_checkpoint
from bioclass.core.atomic import atomic_file
from bioclass.core.console import console
from bioclass.core.errors import BioclassError
from bioclass.data.prepare import LabelledClips
from bioclass.data.split import grouped_folds
from bioclass.evaluation.calibration import CalibrationFit
from bioclass.evaluation.metrics import classification_metrics
from bioclass.evaluation.plots import plot_confusion
from bioclass.evaluation.report import print_metrics
from bioclass.recipe import Recipe
from bioclass.runtime.loop import RunInterrupted
from bioclass.runtime.rundir import LAST, RunDirectory
from bioclass.runtime.rundir import METRICS as METRICS_CSV
from bioclass.training.fit import BEST, Fit, calibrate_and_fit_thresholds, report_calibration

METRICS = ("uar", "map", "accuracy")
CV_METRICS = "cv_metrics.csv"  # one row per validation round: mean and sd over the folds
FOLD_SCORES = "oof_scores.npz"  # a fold's out-of-fold scores and logits per validation round
FOLD_DONE = "fold_done.json"  # written when a fold has finished (its results are complete)


@dataclasses.dataclass
class FoldResult:
    """What one fold left behind for the selection."""

    history: pd.DataFrame  # its metrics.csv rows, with a `fold` column
    # (iteration, weights) -> out-of-fold clip scores, pooled as validation pools them...
    metric_scores: dict[tuple[int, str], np.ndarray]
    # ... and each clip's window logits (calibration and thresholds are fitted on these)
    threshold_logits: dict[tuple[int, str], list[torch.Tensor]]
    targets: np.ndarray  # (n_val,) class indices of its validation clips


def cross_validate(
    recipe: Recipe, clips: LabelledClips, run: RunDirectory, dev: torch.device
) -> dict[str, Any]:
    """Cross-validate, choose the round, train the final model; returns its best.json entry."""
    k = int(recipe.train.cv_folds)
    folds = grouped_folds(clips.used, k, recipe.seed).to_numpy()
    split = clips.table.copy()
    split["fold"] = pd.NA
    split.loc[clips.used["_row"].to_numpy(), "fold"] = folds + 1
    run.write_table("split.csv", split.drop(columns="_row"))
    results = []
    for fold in range(k):
        console.print(f"[bold]cross-validation fold {fold + 1} of {k}[/]")
        fold_dir = run / "cv" / f"fold_{fold + 1}"
        if (fold_dir / FOLD_DONE).is_file():
            console.print(f"finished in an earlier run: {fold_dir}")
            results.append(_load_fold(fold_dir, fold + 1))
        else:
            results.append(_train_fold(recipe, clips, folds == fold, fold + 1, run, dev))
    summary = summarise(pd.concat([r.history for r in results], ignore_index=True))
    run.write_table(CV_METRICS, summary)
    chosen = choose_round(summary, recipe.train.metric, recipe.train.smoothing)
    console.print(_describe_choice(summary, chosen, recipe.train.metric, k))
    key = (int(chosen["iteration"]), str(chosen["weights"]))
    logits = [w for r in results for w in _logits_at(r, key)]
    targets = np.concatenate([r.targets for r in results])
    final = _train_final(recipe, clips, key, run, dev)
    calibration = _store_cv_calibration(run / BEST, logits, targets, clips, recipe)
    best = {
        "iteration": key[0],
        "weights": key[1],
        "metric": recipe.train.metric,
        "value": float(chosen[f"{recipe.train.metric}_mean"]),
        "selection": f"{k}-fold grouped cross-validation",
        "cv": {m: {"mean": chosen[f"{m}_mean"], "sd": chosen[f"{m}_sd"]} for m in METRICS},
        # The out-of-fold predictions at the chosen round, pooled over the folds.
        "metrics": classification_metrics(
            np.concatenate([r.metric_scores[key] for r in results]), targets, clips.classes
        ),
        "final_history": final,
    }
    run.write_text("best.json", json.dumps(best, indent=2, default=float))
    report_calibration(run, calibration, best)
    plot_confusion(
        np.array(best["metrics"]["confusion"]),
        clips.classes,
        run / "confusion_matrix.png",
        f"Out-of-fold clips, {key[1]} weights, iteration {key[0]}",
    )
    print_metrics(
        best["metrics"],
        f"Cross-validated ({k} folds, out-of-fold clips): iteration {key[0]}, {key[1]} weights",
    )
    return best


def _train_fold(
    recipe: Recipe,
    clips: LabelledClips,
    val_mask: np.ndarray,
    fold: int,
    run: RunDirectory,
    dev: torch.device,
) -> FoldResult:
    """Train on the other folds, validate on this one; its files go to cv/fold_N."""
    data = clips.partition(val_mask)
    fold_run, saved = _open_part(run / "cv" / f"fold_{fold}")
    console.print(f"training clips: {len(data.train)}   validation clips: {len(data.val)}")
    fit = Fit(recipe, data, fold_run, dev, saved, keep_threshold_scores=True)
    if saved is not None:
        fit.metric_scores, fit.threshold_logits = _read_scores(fold_run / FOLD_SCORES)
    fit.on_scores = lambda: _write_scores(fold_run, fit.metric_scores, fit.threshold_logits)
    try:
        fit.run()
    except RunInterrupted as exc:
        raise RunInterrupted(
            f"cross-validation fold {fold}: {exc.args[0].split(';')[0]}; continue with: "
            f"bioclass train --resume {run.path}"
        ) from None
    history = pd.DataFrame(fit.state.history).assign(fold=fold)
    if history.empty:
        raise BioclassError(
            "cross-validation fold ended without a validation: set train.eval_every"
        )
    targets = data.val.targets.copy()
    _write_scores(fold_run, fit.metric_scores, fit.threshold_logits, targets)
    fold_run.write_text(FOLD_DONE, json.dumps({"fold": fold, "validations": len(history)}))
    return FoldResult(history, fit.metric_scores, fit.threshold_logits, targets)


def _open_part(folder: Path) -> tuple[RunDirectory, dict[str, Any] | None]:
    """A fold's (or the final model's) run directory: continued from its `last.pt` when an
    earlier run saved one, else new (whatever an interruption left there before the first save
    is this run's own scratch, and is cleared)."""
    if (folder / LAST).is_file():
        return RunDirectory.reopen(folder)
    if folder.is_dir():
        shutil.rmtree(folder)
    return RunDirectory.create(folder), None


def _write_scores(
    run: RunDirectory,
    metric_scores: dict[tuple[int, str], np.ndarray],
    threshold_logits: dict[tuple[int, str], list[torch.Tensor]],
    targets: np.ndarray | None = None,
) -> None:
    """A fold's out-of-fold scores and window logits so far (rewritten after each round, so a
    resumed fold has the rounds before its interruption). A round's window logits are stored
    as one (windows, C) array and each clip's window count, as clips have different counts."""
    arrays = {f"metric/{i}/{w}": v for (i, w), v in metric_scores.items()}
    for (i, w), logits in threshold_logits.items():
        arrays[f"logits/{i}/{w}"] = (
            torch.cat(logits).numpy() if logits else np.zeros((0, 0), np.float32)
        )
        arrays[f"counts/{i}/{w}"] = np.array([len(x) for x in logits], dtype=np.int64)
    if targets is not None:
        arrays["targets"] = targets
    with atomic_file(run / FOLD_SCORES, binary=True) as f:
        np.savez(f, **arrays)


def _read_scores(
    path: Path,
) -> tuple[dict[tuple[int, str], np.ndarray], dict[tuple[int, str], list[torch.Tensor]]]:
    metric: dict[tuple[int, str], np.ndarray] = {}
    logits: dict[tuple[int, str], list[torch.Tensor]] = {}
    if not path.is_file():
        return metric, logits
    with np.load(path) as z:
        for name in z.files:
            kind, _, rest = name.partition("/")
            if not rest:
                continue  # targets
            iteration, weights = rest.split("/")
            key = (int(iteration), weights)
            if kind == "metric":
                metric[key] = z[name]
            elif kind == "logits":
                counts = z[f"counts/{rest}"].tolist()
                logits[key] = list(torch.from_numpy(z[name]).split(counts))
            # Other kinds ("threshold": scores kept before calibration existed) are not used.
    return metric, logits


def _logits_at(result: FoldResult, key: tuple[int, str]) -> list[torch.Tensor]:
    """A fold's out-of-fold window logits at the chosen round."""
    if key not in result.threshold_logits:
        raise BioclassError(
            f"cross-validation: no out-of-fold logits for iteration {key[0]} ({key[1]} weights); "
            "folds finished by a bioclass before calibration kept scores only: delete cv/ and "
            "train again"
        )
    return result.threshold_logits[key]


def _load_fold(folder: Path, fold: int) -> FoldResult:
    """A fold an earlier run finished, read back."""
    history = pd.read_csv(folder / METRICS_CSV).assign(fold=fold)
    metric, logits = _read_scores(folder / FOLD_SCORES)
    with np.load(folder / FOLD_SCORES) as z:
        targets = z["targets"]
    return FoldResult(history, metric, logits, targets)


def summarise(history: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over the folds of each validation round.

    Rounds that not every fold reached (an epoch-based schedule gives folds of different sizes
    different lengths) are left out: their mean would compare unlike things.
    """
    n_folds = history["fold"].nunique()
    grouped = history.groupby(["iteration", "weights"], sort=True)
    summary = grouped[list(METRICS)].agg(["mean", "std"])
    summary.columns = [f"{m}_{'sd' if s == 'std' else s}" for m, s in summary.columns]
    summary["folds"] = grouped.size()
    summary = summary[summary["folds"] == n_folds].reset_index()
    return summary


def choose_round(summary: pd.DataFrame, metric: str, smoothing: int = 1) -> pd.Series:
    """The round with the best mean metric (over `smoothing` consecutive rounds of the same
    weights); ties go to the earlier round, raw weights before EMA."""
    column = f"{metric}_mean"
    ranked = summary.copy()
    ranked["_value"] = ranked.groupby("weights")[column].transform(
        lambda v: v.rolling(smoothing, min_periods=1).mean()
    )
    if ranked["_value"].isna().all():
        raise BioclassError(f"cross-validation measured no {metric} (no validation clips?)")
    order = ranked.sort_values(
        ["_value", "iteration", "weights"], ascending=[False, True, False], kind="mergesort"
    )
    return order.iloc[0].drop(labels="_value")


def _describe_choice(summary: pd.DataFrame, chosen: pd.Series, metric: str, k: int) -> str:
    rows = [
        f"  iteration {int(r.iteration):>6} {r.weights:>3}: {metric} "
        f"{getattr(r, f'{metric}_mean'):.3f} ± {getattr(r, f'{metric}_sd'):.3f}"
        for r in summary.itertuples()
    ]
    return (
        f"cross-validation ({k} folds), mean ± sd per validation round:\n"
        + "\n".join(rows)
        + f"\nchosen: iteration {int(chosen['iteration'])}, {chosen['weights']} weights"
    )


def _train_final(
    recipe: Recipe,
    clips: LabelledClips,
    key: tuple[int, str],
    run: RunDirectory,
    dev: torch.device,
) -> list[dict[str, Any]]:
    """Train on every train and validation clip for the chosen number of iterations and save
    the chosen weights as model.pt."""
    iterations, weights = key
    final_recipe = dataclasses.replace(
        recipe, train=dataclasses.replace(recipe.train, iterations=iterations, epochs=None)
    )
    data = clips.partition(np.zeros(len(clips.used), dtype=bool), quiet=True)
    console.print(
        f"[bold]final model[/]: {len(data.train)} clips, {iterations} iterations, {weights} weights"
    )
    final_run, saved = _open_part(run / "final")
    fit = Fit(final_recipe, data, final_run, dev, saved, validate=False)
    try:
        fit.run()
    except RunInterrupted as exc:
        raise RunInterrupted(
            f"final model: {exc.args[0].split(';')[0]}; continue with: "
            f"bioclass train --resume {run.path}"
        ) from None
    fit.save_model(run, use_ema=weights == "ema", extra={"iteration": iterations})
    return fit.state.history


def _store_cv_calibration(
    path: Path,
    logits: list[torch.Tensor],
    targets: np.ndarray,
    clips: LabelledClips,
    recipe: Recipe,
) -> CalibrationFit | None:
    """Calibration and thresholds of the final model from the folds' out-of-fold window logits
    at the chosen round (the final model has no clips of its own left to fit them on): the
    folds' models at that round stand in for the final one, as for its metrics."""
    ckpt = read_checkpoint(path)
    fit, thresholds, method = calibrate_and_fit_thresholds(
        logits,
        targets,
        clips.classes,
        recipe,
        ckpt["score_activation"],
        f"{len(targets)} out-of-fold clips of {recipe.train.cv_folds}-fold cross-validation",
    )
    if fit is not None:
        ckpt["calibration"] = fit.calibration.to_dict()
    ckpt["thresholds"] = thresholds
    ckpt["thresholds_method"] = method
    atomic_save(ckpt, path)
    return fit
