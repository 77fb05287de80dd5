"""Tests for classification metrics against hand-computed values: UAR, accuracy, AP, confusion."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bioclass.evaluation.metrics import (
    average_precision,
    classification_metrics,
    confusion_matrix,
)

CLASSES = ["owl", "wren", "robin"]


def scores_for(pred: list[int], n_classes: int = 3, seed: int = 0) -> np.ndarray:
    """Scores whose argmax is `pred`, with distinct random values elsewhere (no ties)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0.0, 0.4, size=(len(pred), n_classes))
    scores[np.arange(len(pred)), pred] = rng.uniform(0.6, 1.0, size=len(pred))
    return scores


# 10 clips: owl 6 (5 right, 1 -> wren), wren 3 (1 right, 2 -> owl), robin 1 (-> owl)
Y_TRUE = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 2])
Y_PRED = [0, 0, 0, 0, 0, 1, 1, 0, 0, 0]


def test_uar_is_mean_per_class_recall_and_differs_from_accuracy():
    result = classification_metrics(scores_for(Y_PRED), Y_TRUE, CLASSES)
    assert result["uar"] == pytest.approx((5 / 6 + 1 / 3 + 0) / 3)  # 7/18
    assert result["accuracy"] == pytest.approx(6 / 10)
    assert result["uar"] < result["accuracy"], "imbalance: accuracy flatters the majority class"
    assert result["n_clips"] == 10
    per = result["per_class"]
    assert per["owl"]["recall"] == pytest.approx(5 / 6)
    assert per["wren"]["recall"] == pytest.approx(1 / 3)
    assert per["robin"]["recall"] == 0.0
    assert per["owl"]["precision"] == pytest.approx(5 / 8)
    assert per["wren"]["precision"] == pytest.approx(1 / 2)
    assert per["robin"]["precision"] is None, "never predicted: precision undefined"
    assert [per[c]["support"] for c in CLASSES] == [6, 3, 1]
    assert result["classes"] == CLASSES


def test_confusion_rows_are_true_classes():
    result = classification_metrics(scores_for(Y_PRED), Y_TRUE, CLASSES)
    assert result["confusion"] == [[5, 1, 0], [2, 1, 0], [1, 0, 0]]
    cm = confusion_matrix(np.array([0, 0, 2]), np.array([1, 1, 0]), 3)
    assert cm.tolist() == [[0, 2, 0], [0, 0, 0], [1, 0, 0]]
    assert cm.dtype == np.int64


def test_map_is_mean_of_per_class_ap():
    scores = scores_for(Y_PRED, seed=3)
    result = classification_metrics(scores, Y_TRUE, CLASSES)
    aps = [average_precision(scores[:, c], np.equal(Y_TRUE, c)) for c in range(3)]
    assert [result["per_class"][c]["ap"] for c in CLASSES] == pytest.approx(aps)
    assert result["map"] == pytest.approx(np.mean(aps))


def test_average_precision_hand_computed():
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    assert average_precision(scores, np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(scores, np.array([0, 1, 0, 1])) == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert average_precision(scores, np.array([0, 0, 0, 1])) == pytest.approx(1 / 4)
    assert average_precision(scores, np.array([1, 1, 0, 0])) == 1.0
    assert average_precision(scores, np.array([1, 1, 1, 1])) == 1.0


def test_average_precision_ignores_input_order():
    scores = np.array([0.6, 0.9, 0.7, 0.8])
    positive = np.array([False, True, True, False])  # same ranking as the example above
    assert average_precision(scores, positive) == pytest.approx((1 + 2 / 3) / 2)


def test_average_precision_ties_share_a_rank():
    # a tie between a positive and a negative counts as one threshold, whatever the order
    assert average_precision(np.array([0.5, 0.5]), np.array([1, 0])) == pytest.approx(0.5)
    assert average_precision(np.array([0.5, 0.5]), np.array([0, 1])) == pytest.approx(0.5)
    # threshold 0.8 admits three clips, two positive: P = 2/3 at R = 1
    tied = np.array([0.8, 0.8, 0.8, 0.2])
    assert average_precision(tied, np.array([1, 0, 1, 0])) == pytest.approx(2 / 3)
    assert average_precision(tied, np.array([0, 1, 1, 0])) == pytest.approx(2 / 3)
    # a top score, then a tie: R .5 at P 1, then R 1 at P 2/3
    mixed = np.array([0.9, 0.5, 0.5, 0.1])
    assert average_precision(mixed, np.array([1, 1, 0, 0])) == pytest.approx(0.5 + 0.5 * 2 / 3)
    assert average_precision(mixed, np.array([1, 0, 1, 0])) == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_average_precision_no_positive_is_nan():
    assert np.isnan(average_precision(np.array([0.3, 0.2]), np.array([0, 0])))


def test_absent_class_is_none_and_excluded_from_means():
    y_true = np.array([0, 0, 1, 1])
    scores = scores_for([0, 1, 1, 1], seed=1)
    result = classification_metrics(scores, y_true, CLASSES)
    robin = result["per_class"]["robin"]
    assert robin["support"] == 0
    assert robin["recall"] is None and robin["ap"] is None and robin["precision"] is None
    assert result["uar"] == pytest.approx((1 / 2 + 1) / 2), "mean over the two present classes"
    aps = [average_precision(scores[:, c], y_true == c) for c in (0, 1)]
    assert result["map"] == pytest.approx(np.mean(aps))
    json.dumps(result, allow_nan=False)  # JSON-able: no NaN anywhere


def test_perfect_classifier():
    y_true = np.array([0, 1, 2, 2, 1, 0, 0])
    result = classification_metrics(scores_for(list(y_true), seed=2), y_true, CLASSES)
    assert result["uar"] == 1.0 and result["map"] == 1.0 and result["accuracy"] == 1.0
    assert np.trace(np.array(result["confusion"])) == 7
    assert all(result["per_class"][c]["precision"] == 1.0 for c in CLASSES)


def test_chance_ranking_gives_low_map():
    # every positive ranked below every negative
    y_true = np.array([0, 0, 1, 1])
    scores = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    result = classification_metrics(scores, y_true, ["a", "b"])
    assert result["uar"] == 0.0 and result["accuracy"] == 0.0
    assert result["map"] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_logits_and_probabilities_give_same_metrics():
    logits = np.random.default_rng(4).normal(size=(30, 3)) * 3
    y_true = np.random.default_rng(5).integers(0, 3, 30)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    a = classification_metrics(logits, y_true, CLASSES)
    b = classification_metrics(probs, y_true, CLASSES)
    assert a["uar"] == pytest.approx(b["uar"]) and a["accuracy"] == pytest.approx(b["accuracy"])
    assert a["confusion"] == b["confusion"]
