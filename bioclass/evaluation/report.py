"""Terminal tables of classification results (rich, on stderr)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from bioclass.core.console import console


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def print_metrics(metrics: dict[str, Any], title: str) -> None:
    """Per-class recall/precision/AP and the summary figures."""
    table = Table(title=title, title_justify="left")
    for column in ("class", "clips", "recall %", "precision %", "AP %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, m in metrics["per_class"].items():
        table.add_row(
            name, str(m["support"]), _pct(m["recall"]), _pct(m["precision"]), _pct(m["ap"])
        )
    table.add_section()
    table.add_row(
        "[bold]UAR / mAP[/]",
        str(metrics["n_clips"]),
        f"[bold]{_pct(metrics['uar'])}[/]",
        "",
        f"[bold]{_pct(metrics['map'])}[/]",
    )
    table.add_row("accuracy", "", _pct(metrics["accuracy"]), "", "")
    console.print(table)


def print_multilabel_metrics(metrics: dict[str, Any], title: str) -> None:
    """Per-class AP, ROC AUC and precision/recall/F1 of multi-label windows, and the pooled
    figures (mAP and macro AUC; micro precision, recall and F1)."""
    table = Table(title=title, title_justify="left")
    columns = ("class", "positives", "AP %", "AUC %", "precision %", "recall %", "F1 %")
    for column in columns:
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, m in metrics["per_class"].items():
        table.add_row(
            name,
            str(m["support"]),
            _pct(m["ap"]),
            _pct(m["auc"]),
            _pct(m["precision"]),
            _pct(m["recall"]),
            _pct(m["f1"]),
        )
    table.add_section()
    table.add_row(
        f"[bold]all[/] ({metrics['n_windows']} windows)",
        str(sum(m["support"] for m in metrics["per_class"].values())),
        f"[bold]{_pct(metrics['map'])}[/]",
        _pct(metrics["auc"]),
        _pct(metrics["precision"]),
        _pct(metrics["recall"]),
        f"[bold]{_pct(metrics['f1'])}[/]",
    )
    console.print(table)
