"""Model selection that does not overfit a small validation split: grouped folds, smoothed
selection, cross-validation end to end, and the held-out test split reported beside it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli, write_recipe

from bioclass.core.errors import BioclassError
from bioclass.data.split import grouped_folds
from bioclass.training.cv import choose_round, summarise
from bioclass.training.fit import selection_value


def _table(n_groups: int, per_group: int = 3) -> pd.DataFrame:
    rows = []
    for g in range(n_groups):
        label = ["a", "b", "c"][g % 3]
        rows += [{"file": f"g{g}_{i}.wav", "label": label, "group": f"g{g}"}
                 for i in range(per_group)]  # fmt: skip
    return pd.DataFrame(rows)


def test_folds_keep_groups_whole_and_spread_classes() -> None:
    table = _table(15)
    folds = grouped_folds(table, 5, seed=1)
    assert sorted(folds.unique()) == [0, 1, 2, 3, 4]
    assert (table.assign(fold=folds).groupby("group")["fold"].nunique() == 1).all()
    per_class = pd.crosstab(table["label"], folds)
    assert (per_class > 0).all().all()  # 5 groups per class, one in each fold
    assert folds.equals(grouped_folds(table, 5, seed=1))
    assert not folds.equals(grouped_folds(table, 5, seed=2))


def test_too_few_groups_for_the_folds_is_one_clear_error() -> None:
    with pytest.raises(BioclassError, match="cv_folds is 5 but the clips come from only 4"):
        grouped_folds(_table(4), 5, seed=0)


def test_smoothed_selection_ignores_one_lucky_round() -> None:
    history = [{"weights": "raw", "uar": 0.5}, {"weights": "raw", "uar": 0.9},
               {"weights": "ema", "uar": 0.1}]  # fmt: skip
    assert selection_value(history, "raw", "uar", 0.6, 1) == 0.6
    assert selection_value(history, "raw", "uar", 0.6, 2) == pytest.approx(0.75)
    assert selection_value(history, "raw", "uar", 0.6, 5) == pytest.approx((0.5 + 0.9 + 0.6) / 3)
    assert selection_value(history, "ema", "uar", 0.3, 2) == pytest.approx(0.2)
    assert selection_value(history, "raw", "uar", None, 1) == float("-inf")


def _history() -> pd.DataFrame:
    rows = []
    for fold, uars in enumerate([[0.5, 0.8, 0.7], [0.6, 0.6, 0.7], [0.4, 0.7, 0.7]], start=1):
        for it, uar in zip([10, 20, 30], uars, strict=True):
            rows.append({"fold": fold, "iteration": it, "weights": "raw", "uar": uar,
                         "map": uar, "accuracy": uar})  # fmt: skip
    rows.append(
        {"fold": 1, "iteration": 40, "weights": "raw", "uar": 1.0, "map": 1.0, "accuracy": 1.0}
    )  # fmt: skip  (a round only one fold reached)
    return pd.DataFrame(rows)


def test_summary_is_mean_and_sd_over_the_folds_every_fold_reached() -> None:
    summary = summarise(_history())
    assert summary["iteration"].tolist() == [10, 20, 30]
    row = summary.set_index("iteration").loc[20]
    assert row["uar_mean"] == pytest.approx(0.7)
    assert row["uar_sd"] == pytest.approx(np.std([0.8, 0.6, 0.7], ddof=1))
    assert (summary["folds"] == 3).all()


def test_chosen_round_has_the_best_mean_ties_to_the_earlier() -> None:
    summary = summarise(_history())
    assert int(choose_round(summary, "uar")["iteration"]) == 20  # 0.70 at 20 and 30: earlier
    # Smoothed over two rounds, 30 (mean of 0.70 and 0.70) beats 20 (mean of 0.50 and 0.70).
    assert int(choose_round(summary, "uar", smoothing=2)["iteration"]) == 30


@pytest.fixture(scope="module")
def cv_run(dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cv")
    recipe = write_recipe(folder, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", folder / "run", "--set", "train.cv_folds=2")
    assert code == 0, output
    assert "cross-validation (2 folds)" in output and "chosen: iteration" in output
    return folder / "run"


def test_cross_validated_training_end_to_end(cv_run: Path) -> None:
    run = cv_run
    summary = pd.read_csv(run / "cv_metrics.csv")
    assert set(summary["iteration"]) == {3, 6} and (summary["folds"] == 2).all()
    for fold in (1, 2):
        assert (run / "cv" / f"fold_{fold}" / "metrics.csv").is_file()
    split = pd.read_csv(run / "split.csv")
    assert set(split["fold"].dropna()) == {1, 2}
    assert (split.groupby("group")["fold"].nunique() <= 1).all()
    best = json.loads((run / "best.json").read_text())
    assert best["selection"] == "2-fold grouped cross-validation"
    assert best["metrics"]["n_clips"] == len(split)  # every clip scored out of fold once
    ckpt = torch.load(run / "model.pt", weights_only=True)
    assert ckpt["iteration"] == best["iteration"]
    assert ckpt["use_ema"] == (best["weights"] == "ema")
    assert "out-of-fold clips of 2-fold cross-validation" in ckpt["thresholds_method"]
    # Calibrated on the same out-of-fold clips, then the thresholds on calibrated scores.
    assert "out-of-fold clips" in ckpt["calibration"]["fitted_on"]
    assert "calibrated scores" in ckpt["thresholds_method"]
    assert best["calibration"] == ckpt["calibration"] and (run / "calibration.png").is_file()


def test_interrupted_cross_validation_resumes_to_the_same_model(
    cv_run: Path, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import signal

    import bioclass.runtime.loop as loop

    real, calls = loop.lr_factor, []

    def ctrl_c_in_fold_2(iteration: int, *args: object) -> float:
        calls.append(iteration)
        if len(calls) == 8:  # fold 1 takes 6 steps: this is fold 2's second
            os.kill(os.getpid(), signal.SIGINT)
        return real(iteration, *args)

    monkeypatch.setattr(loop, "lr_factor", ctrl_c_in_fold_2)
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    run = tmp_path / "run"
    code, output = run_cli("train", recipe, "--out", run, "--set", "train.cv_folds=2")
    assert code == 1, output
    assert "cross-validation fold 2" in output and f"--resume {run}" in output.replace("\n", "")
    assert (run / "cv" / "fold_1" / "fold_done.json").is_file()
    monkeypatch.setattr(loop, "lr_factor", real)
    code, output = run_cli("train", "--resume", run)
    assert code == 0, output
    assert "finished in an earlier run" in output
    pd.testing.assert_frame_equal(
        pd.read_csv(run / "cv_metrics.csv"), pd.read_csv(cv_run / "cv_metrics.csv")
    )
    a = torch.load(cv_run / "model.pt", weights_only=True)
    b = torch.load(run / "model.pt", weights_only=True)
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert a["thresholds"] == b["thresholds"]


def test_held_out_test_split_is_reported_beside_validation(dataset: Path, tmp_path: Path) -> None:
    table = pd.read_csv(dataset / "labels.csv")
    groups = sorted(table["group"].unique())
    table["split"] = np.where(table["group"] == groups[0], "test", "train")
    table["file"] = [str((dataset / f).resolve()) for f in table["file"]]
    csv = tmp_path / "with_test.csv"
    table.to_csv(csv, index=False)
    recipe = write_recipe(tmp_path, csv)
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert "Held-out test split" in output
    best = json.loads((tmp_path / "run" / "best.json").read_text())
    assert best["test"]["n_clips"] == int((table["split"] == "test").sum())
    code, evaluated = run_cli(
        "evaluate", tmp_path / "run" / "model.pt", tmp_path / "run" / "split.csv",
        "--split", "test", "--out", "-",
    )  # fmt: skip
    assert code == 0, evaluated
    assert json.loads(evaluated[evaluated.index("{") :])["uar"] == pytest.approx(
        best["test"]["uar"]
    )


def test_train_suggests_robust_selection_for_few_clips(dataset: Path, tmp_path: Path) -> None:
    recipe = write_recipe(tmp_path, dataset / "labels.csv")
    code, output = run_cli("train", recipe, "--out", tmp_path / "run")
    assert code == 0, output
    assert "few labelled clips" in output and "train.cv_folds=5" in output
    code, output = run_cli(
        "train", recipe, "--out", tmp_path / "smoothed", "--set", "train.smoothing=2"
    )
    assert code == 0, output
    assert "few labelled clips" not in output
