"""Plots written as PNG files: learning curves and the confusion matrix of a run; precision-recall
curves and detection score histograms of an evaluation against annotations."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: training runs on headless machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bioclass.core.atomic import atomic_write_bytes  # noqa: E402


def plot_learning_curve(history: pd.DataFrame, metric: str, path: Path) -> None:
    """Training loss and the validation metric (raw and EMA weights) against iterations."""
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 4))
    raw = history[history["weights"] == "raw"]
    ax_loss.plot(raw["iteration"], raw["train_loss"], marker="o")
    ax_loss.set(xlabel="iteration", ylabel="training loss", title="Training loss")
    for weights, part in history.groupby("weights"):
        ax_metric.plot(part["iteration"], part[metric], marker="o", label=f"{weights} weights")
    ax_metric.set(xlabel="iteration", ylabel=metric.upper(), title=f"Validation {metric.upper()}")
    ax_metric.set_ylim(0, 1.02)
    ax_metric.legend()
    for ax in (ax_loss, ax_metric):
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_pretrain_curves(history: pd.DataFrame, path: Path) -> None:
    """Contrastive loss, alignment/uniformity and (when monitored) kNN / probe UAR over time."""
    probes = [
        c
        for c in ("knn_uar", "probe_uar", "knn_accuracy", "probe_accuracy")
        if c in history.columns and history[c].notna().any()
    ]
    n_plots = 3 if probes else 2
    fig, axes = plt.subplots(1, n_plots, figsize=(5 * n_plots, 4))
    axes[0].plot(history["iteration"], history["loss"], marker="o")
    axes[0].set(xlabel="iteration", ylabel="loss", title="Contrastive loss")
    axes[1].plot(history["iteration"], history["alignment"], marker="o", label="alignment")
    axes[1].plot(history["iteration"], history["uniformity"], marker="o", label="uniformity")
    axes[1].set(xlabel="iteration", title="Alignment / uniformity (lower is better)")
    axes[1].legend()
    if probes:
        for column in probes:
            axes[2].plot(history["iteration"], history[column], marker="o", label=column)
        axes[2].set(xlabel="iteration", title="Labelled-set monitoring")
        axes[2].set_ylim(0, 1.02)
        axes[2].legend()
    for ax in axes:
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_confusion(confusion: np.ndarray, classes: list[str], path: Path, title: str) -> None:
    """Row-normalised confusion matrix (recall on the diagonal) with counts in each cell."""
    cm = np.asarray(confusion, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.7 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(classes)):
        for j in range(len(classes)):
            colour = "white" if norm[i, j] > 0.5 else "black"
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({int(cm[i, j])})",
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
            )
    fig.colorbar(image, ax=ax, fraction=0.046)
    _save(fig, path)


def plot_reliability(
    before: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    after: tuple[np.ndarray, np.ndarray, np.ndarray, float],
    path: Path,
    title: str,
) -> None:
    """Reliability diagram before and after calibration: each bin's observed frequency against
    its mean score (the diagonal is perfect calibration), with the predictions per bin below.

    Args:
        before, after: (confidence, frequency, counts, ece) per bin, as
            `evaluation.calibration.reliability` gives them.
    """
    fig, (ax, ax_counts) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfectly calibrated")
    n_bins = len(before[2])
    centres = (np.arange(n_bins) + 0.5) / n_bins
    width = 0.4 / n_bins
    for (conf, freq, counts, ece), name, shift in (
        (before, "raw", -width / 2),
        (after, "calibrated", width / 2),
    ):
        seen = counts > 0
        ax.plot(conf[seen], freq[seen], marker="o", label=f"{name} (ECE {ece:.3f})")
        ax_counts.bar(centres + shift, counts, width=width, label=name)
    ax.set(ylabel="observed frequency", title=title, xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(loc="upper left")
    ax_counts.set(xlabel="score (bin mean)", ylabel="predictions")
    ax_counts.set_yscale("log")
    for a in (ax, ax_counts):
        a.grid(alpha=0.3)
    _save(fig, path)


def _grid(n: int) -> tuple[plt.Figure, list[plt.Axes]]:
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.6 * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(fig: plt.Figure, path: Path) -> None:
    # Rendered in memory and written by the atomic writer: no half-written PNG on failure.
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def plot_precision_recall(curves: dict[str, dict], path: Path) -> None:
    """One precision-recall curve per class (window level, ranked by the class's score), the
    operating point of the thresholds marked."""
    fig, axes = _grid(max(len(curves), 1))
    for ax, (name, curve) in zip(axes, curves.items(), strict=False):
        if len(curve["recall"]):
            # AP's rectangles: each threshold's precision over the recall it adds.
            recall = np.r_[0.0, curve["recall"]]
            precision = np.r_[curve["precision"][0], curve["precision"]]
            ax.step(recall, precision, where="pre")
        point = curve.get("operating_point")
        if point is not None and not np.isnan(point).any():
            ax.plot(*point, "o", color="C3", label="at threshold")
            ax.legend(loc="lower left", fontsize=8)
        ap = curve.get("ap", float("nan"))
        ax.set(
            xlabel="recall",
            ylabel="precision",
            title=f"{name}  AP {ap:.2f}" if ap == ap else f"{name}  (no positive window)",
            xlim=(0, 1.02),
            ylim=(0, 1.02),
        )
        ax.grid(alpha=0.3)
    _save(fig, path)


def plot_score_histograms(detections: pd.DataFrame, classes: list[str], path: Path) -> None:
    """Per class, the scores of true (matched) and false detections, as two histograms."""
    fig, axes = _grid(max(len(classes), 1))
    bins = np.linspace(0, 1, 21)
    for ax, name in zip(axes, classes, strict=False):
        rows = detections[detections["label"] == name]
        for outcome, colour in (("true positive", "C2"), ("false positive", "C3")):
            values = rows.loc[rows["outcome"] == outcome, "score"].dropna()
            ax.hist(values, bins=bins, alpha=0.6, color=colour, label=f"{outcome}s ({len(values)})")
        ax.set(xlabel="detection score", ylabel="detections", title=name)
        if rows["score"].notna().any():
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no detections", ha="center", va="center", transform=ax.transAxes)
            ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    _save(fig, path)
