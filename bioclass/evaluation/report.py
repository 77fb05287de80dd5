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
