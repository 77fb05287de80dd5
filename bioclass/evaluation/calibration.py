"""Calibration of a trained model's scores: fitted on validation clips at the end of training,
stored in the checkpoint, applied by `core.activation.ScoreMap`; and the expected calibration
error (ECE) that measures it.

Softmax models get temperature scaling (Guo et al. 2017): one T > 0, logits / T, minimising the
negative log-likelihood. It keeps every window's top class. Sigmoid models get Platt scaling per
class: a_c * logit_c + b_c, minimising the binary cross-entropy of class c against "the clip is
c", with Platt's (1999) smoothed targets so a class the model separates perfectly on a few clips
gets a finite slope instead of an infinitely sharp one.

Which logits: one vector per clip, the mean of its windows' logits (a clip no longer than the
window is one window; `centre` pooling keeps the centre window only). A clip's label holds for
the clip, not for each window: in a 30 s clip with one call at second 12, most windows are
background, so fitting per window would teach the calibration that confident background windows
of a "trill" clip are wrong. Both maps are affine in the logits, so mapping each window's logits
and then averaging them is exactly mapping the clip's mean logits: the calibration fitted on clip
logits is the one `mean_logit` pooling and single-window clips see, and a scan applies the same
map to every window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from bioclass.core.activation import Activation, Calibration, ScoreMap

N_BINS = 15  # ECE bins of equal width on [0, 1] (Guo et al. 2017)
# The temperature is searched in [1/100, 100]: beyond, the scores are all 0/1 or all equal.
LOG_T_RANGE = (-np.log(100.0), np.log(100.0))


def clip_logits(window_logits: list[torch.Tensor], n_classes: int) -> np.ndarray:
    """(N, C) float64: each clip's mean window logits (see the module docstring)."""
    if not window_logits:
        return np.zeros((0, n_classes))
    return torch.stack([w.double().mean(dim=0) for w in window_logits]).numpy()


def one_hot(targets: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, C) bool "the clip is of class c": from (N,) class indices, or (N, C) multi-hot
    targets of multi-label windows as they are."""
    targets = np.asarray(targets)
    if targets.ndim == 2:
        return targets > 0.5
    return targets.astype(np.int64)[:, None] == np.arange(n_classes)[None, :]


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _nll(logits: np.ndarray, targets: np.ndarray, log_t: float) -> float:
    logp = _log_softmax(logits / np.exp(log_t))
    return float(-logp[np.arange(len(targets)), targets].mean())


def fit_temperature(logits: np.ndarray, targets: np.ndarray) -> float:
    """T minimising the mean negative log-likelihood of softmax(logits / T).

    The NLL is convex in 1/T, hence unimodal in log T: a golden-section search on log T finds
    the minimum without gradients or step sizes to tune.
    """
    if len(targets) == 0:
        return 1.0
    lo, hi = LOG_T_RANGE
    ratio = (np.sqrt(5.0) - 1) / 2
    a, b = lo + (1 - ratio) * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = _nll(logits, targets, a), _nll(logits, targets, b)
    for _ in range(80):  # the bracket shrinks to 0.618^80 of 9.2: far below float precision
        if fa <= fb:
            hi, b, fb = b, a, fa
            a = lo + (1 - ratio) * (hi - lo)
            fa = _nll(logits, targets, a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = _nll(logits, targets, b)
    return float(np.exp((lo + hi) / 2))


def fit_platt(x: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the BCE of sigmoid(a * x + b) against Platt's smoothed targets.

    Newton's method on a convex objective (logistic regression on one feature). A class without
    positives or negatives, or whose best slope is not positive (the logit does not rank the
    class), keeps its logit as it is: (1, 0).
    """
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 1.0, 0.0
    t = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    features = np.stack([x, np.ones_like(x)], axis=1)  # (N, 2)
    w = np.array([1.0, 0.0])  # the identity: where the search starts

    def loss(w: np.ndarray) -> float:
        z = features @ w
        return float(np.mean(np.logaddexp(0, z) - t * z))

    for _ in range(100):
        p = 1 / (1 + np.exp(-(features @ w)))
        grad = features.T @ (p - t) / len(x)
        hess = (features.T * (p * (1 - p))) @ features / len(x) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        # Backtracking keeps each step downhill (Newton can overshoot on flat stretches).
        scale, current = 1.0, loss(w)
        while scale > 1e-6 and loss(w - scale * step) > current:
            scale /= 2
        w = w - scale * step
        if np.abs(scale * step).max() < 1e-10:
            break
    a, b = float(w[0]), float(w[1])
    if not (np.isfinite(a) and np.isfinite(b)) or a <= 0:
        return 1.0, 0.0
    return a, b


@dataclass(frozen=True)
class Reliability:
    """Per-bin figures of a reliability diagram (bins of equal width on [0, 1])."""

    confidence: np.ndarray  # (bins,) mean predicted probability (nan in an empty bin)
    frequency: np.ndarray  # (bins,) observed accuracy / frequency of the class
    counts: np.ndarray  # (bins,) predictions in the bin
    ece: float


def reliability(
    scores: np.ndarray, targets: np.ndarray, activation: Activation | str, n_bins: int = N_BINS
) -> Reliability:
    """Reliability and ECE of clip scores against their true classes.

    softmax: each clip is one prediction, its top class's score (confidence), right when the
        top class is the true one.
    sigmoid: each (clip, class) pair is one prediction, the class's score, right when the clip
        is of that class (the per-class reliabilities pooled into one diagram: every class's
        scores claim to be probabilities of their own event).

    ECE = sum over bins of (predictions in the bin / all predictions) * |frequency - confidence|.
    """
    activation = Activation.parse(activation)
    scores = np.asarray(scores, dtype=np.float64)
    if activation is Activation.SOFTMAX:
        confidence = scores.max(axis=1) if len(scores) else np.zeros(0)
        outcome = (scores.argmax(axis=1) == targets) if len(scores) else np.zeros(0)
    else:
        confidence = scores.ravel()
        outcome = one_hot(targets, scores.shape[1]).ravel()
    # A score of exactly 1 belongs to the last bin, not to a bin of its own.
    index = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    total_conf = np.bincount(index, weights=confidence, minlength=n_bins)
    total_right = np.bincount(index, weights=outcome.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf, freq = total_conf / counts, total_right / counts
    n = max(1, len(confidence))
    ece = float(np.sum(np.abs(total_right - total_conf)) / n)  # = sum n_b/n |freq_b - conf_b|
    return Reliability(conf, freq, counts, ece)


def expected_calibration_error(
    scores: np.ndarray, targets: np.ndarray, activation: Activation | str, n_bins: int = N_BINS
) -> float:
    """The ECE of `reliability` (see there for the two definitions)."""
    return reliability(scores, targets, activation, n_bins).ece


@dataclass(frozen=True)
class CalibrationFit:
    """A fitted calibration and the reliability of the clips it was fitted on."""

    calibration: Calibration
    before: Reliability
    after: Reliability


def fit_calibration(
    window_logits: list[torch.Tensor],
    targets: np.ndarray,
    activation: Activation | str,
    fitted_on: str,
    per_class: bool = False,
) -> CalibrationFit:
    """Fit the calibration of a model's scores on labelled clips.

    Args:
        window_logits: each clip's (K_i, C) window logits (`clip_window_logits`).
        targets: (N,) true class indices, or (N, C) multi-hot targets (sigmoid only: windows
            of annotated recordings, each class its own event).
        activation: softmax (temperature scaling) or sigmoid (Platt scaling).
        fitted_on: which clips these are, for the checkpoint.
        per_class: sigmoid: one Platt map per class instead of one for all. One map for all
            (a > 0) keeps every clip's top class and each class's ranking, so accuracy, UAR and
            AP stay what validation measured; a map per class can reorder classes, fitted on a
            few validation clips per class.
    """
    activation = Activation.parse(activation)
    n_classes = window_logits[0].shape[1] if window_logits else 0
    logits = clip_logits(window_logits, n_classes)
    targets = np.asarray(targets)
    if activation is Activation.SOFTMAX:
        targets = targets.astype(np.int64)
        calibration = Calibration("temperature", temperature=fit_temperature(logits, targets))
    else:
        positive = one_hot(targets, n_classes)  # (N, C)
        if per_class:
            fits = [fit_platt(logits[:, c], positive[:, c]) for c in range(n_classes)]
        else:
            fits = [fit_platt(logits.reshape(-1), positive.reshape(-1))] * n_classes
        calibration = Calibration("platt", a=tuple(a for a, _ in fits), b=tuple(b for _, b in fits))
    raw = ScoreMap(activation)(torch.from_numpy(logits)).numpy()
    calibrated = ScoreMap(activation, calibration)(torch.from_numpy(logits)).numpy()
    before = reliability(raw, targets, activation)
    after = reliability(calibrated, targets, activation)
    calibration = Calibration(
        calibration.method,
        calibration.temperature,
        calibration.a,
        calibration.b,
        fitted_on=fitted_on,
        ece_before=before.ece,
        ece_after=after.ece,
    )
    return CalibrationFit(calibration, before, after)
