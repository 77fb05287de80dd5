"""An evaluation against annotations on the terminal (rich tables on stderr) and on disk: the
JSON report, one CSV per level, the threshold sweep, per-detection and per-box tables, and
plots, all named from the report's stem."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.table import Table

from bioclass.core.atomic import atomic_write_text
from bioclass.core.console import console
from bioclass.evaluation.annotated import AnnotationReport
from bioclass.evaluation.event_level import OUTSIDE
from bioclass.evaluation.plots import plot_precision_recall, plot_score_histograms


def report_paths(out: Path) -> dict[str, Path]:
    """Where each output goes: `report.json` -> `report.events.csv`, ... beside it."""
    stem = out.with_suffix("") if out.suffix else out
    name = stem.name

    def beside(suffix: str) -> Path:
        return stem.with_name(name + suffix)

    return {
        "json": out,
        "windows": beside(".windows.csv"),
        "sweep": beside(".sweep.csv"),
        "events": beside(".events.csv"),
        "recordings": beside(".recordings.csv"),
        "detections": beside(".detections.csv"),
        "boxes": beside(".boxes.csv"),
        "pr_curves": beside(".pr_curves.png"),
        "score_histograms": beside(".score_histograms.png"),
    }


def write_annotation_report(report: AnnotationReport, out: Path) -> dict[str, str]:
    """Write every output of `report` beside `out` (the JSON last, listing the others).

    Returns:
        {output: path} of what was written.
    """
    paths = report_paths(out)
    written: dict[str, str] = {}

    def table(key: str, frame: pd.DataFrame | None) -> None:
        if frame is not None:
            atomic_write_text(paths[key], frame.to_csv(index=False, lineterminator="\n"))
            written[key] = str(paths[key])

    for key in ("windows", "sweep", "events", "recordings", "detections", "boxes"):
        table(key, getattr(report, key))
    if report.curves:
        plot_precision_recall(report.curves, paths["pr_curves"])
        written["pr_curves"] = str(paths["pr_curves"])
    scored = report.detections[report.detections["outcome"] != OUTSIDE]
    if len(scored) and scored["score"].notna().any():
        plot_score_histograms(scored, report.summary["classes"], paths["score_histograms"])
        written["score_histograms"] = str(paths["score_histograms"])
    data = {**report.to_json(), "outputs": {**written, "json": str(paths["json"])}}
    atomic_write_text(paths["json"], json.dumps(data, indent=2) + "\n")
    written["json"] = str(paths["json"])
    return written


def _value(row: pd.Series, name: str) -> str:
    value = row[name]
    if pd.isna(value):
        return "-"
    low, high = row.get(f"{name}_low"), row.get(f"{name}_high")
    if low is None or pd.isna(low):
        return f"{value:.2f}"
    return f"{value:.2f} [dim]({low:.2f}–{high:.2f})[/]"


def _table(title: str, columns: list[str]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        # fold, not truncate: an interval cut to "(0.50-1.0…" would misreport it
        table.add_column(column, justify="left" if column == "class" else "right", overflow="fold")
    return table


def _add_rows(table: Table, frame: pd.DataFrame, cells) -> None:
    for i, (_, row) in enumerate(frame.iterrows()):
        if i == len(frame) - 1:
            table.add_section()
        label = f"[bold]{row['label']}[/]" if row["label"] == "all" else str(row["label"])
        table.add_row(label, *cells(row))


def print_annotation_report(report: AnnotationReport) -> None:
    """Notes (skips and what was ignored), then one table per level, on stderr."""
    summary = report.summary
    console.print(
        f"{summary['source']} against {len(summary['annotations'])} annotation table(s): "
        f"{summary['recordings']} recording(s), {summary['annotated_hours']:.3f} h annotated, "
        f"{summary['boxes']} box(es); thresholds: {summary['threshold_origin'] or '-'}",
        highlight=False,
        soft_wrap=True,
    )
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    level = int(round(100 * summary["bootstrap"]["level"]))
    ci = f" ({level} % CI over recordings)" if summary["bootstrap"]["replicates"] else ""
    if report.windows is not None:
        table = _table(
            f"windows{ci}",
            ["class", "windows", "positive", "AP", "ROC AUC", "threshold", "precision", "recall"],
        )
        table.add_column("F1", justify="right", overflow="fold")
        _add_rows(
            table,
            report.windows,
            lambda r: [
                str(r["windows"]),
                str(r["positives"]),
                _value(r, "ap"),
                _value(r, "auc"),
                "-" if pd.isna(r["threshold"]) else f"{r['threshold']:.3g}",
                _value(r, "precision"),
                _value(r, "recall"),
                _value(r, "f1"),
            ],
        )
        console.print(table)
    table = _table(
        f"events{ci}", ["class", "boxes", "detections", "matched", "precision", "recall", "F1"]
    )
    _add_rows(
        table,
        report.events,
        lambda r: [
            str(r["boxes"]),
            str(r["detections"]),
            str(r["tp"]),
            _value(r, "precision"),
            _value(r, "recall"),
            _value(r, "f1"),
        ],
    )
    console.print(table)
    table = _table(f"recordings{ci}", ["class", "present", "detected", "precision", "recall", "F1"])
    _add_rows(
        table,
        report.recordings,
        lambda r: [
            str(r["present"]),
            str(r["detected"]),
            _value(r, "precision"),
            _value(r, "recall"),
            _value(r, "f1"),
        ],
    )
    console.print(table)
