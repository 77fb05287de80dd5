"""Terminal report of a scan: what was done, where it went, and (with a truth table) how well."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from bioclass.core.console import alerts, console
from bioclass.scan.options import ScanOptions
from bioclass.scan.summary import ScanSummary


def print_scan_report(summary: ScanSummary, options: ScanOptions, truth: Path | None) -> None:
    """Summary table, output paths, and event precision/recall when a truth table is given."""
    hours = summary.audio_seconds / 3600
    speed = summary.audio_seconds / max(summary.wall_seconds, 1e-9)
    table = Table(title="scan", title_justify="left", show_header=False)
    table.add_row(
        "files",
        f"{summary.n_files} ({summary.n_scanned} scanned, "
        f"{summary.n_resumed} from an earlier run, {summary.n_failed} failed)",
    )
    table.add_row("audio", f"{hours:.3f} h")
    table.add_row("wall time", f"{summary.wall_seconds:.1f} s ({speed:.0f}x real time)")
    table.add_row("detections", str(summary.n_detections))
    for name, path in summary.outputs.items():
        table.add_row(name, path)
    console.print(table)
    # Warnings print even with --quiet (`alerts`); the tables do not.
    if summary.n_failed:
        alerts.print(
            f"[yellow]{summary.n_failed} file(s) could not be read: see "
            f"{summary.outputs.get('failed')}"
        )
    if summary.damaged:
        where = summary.outputs.get("manifest", "the manifest")
        alerts.print(
            f"[yellow]{len(summary.damaged)} damaged file(s) scanned in part or repaired "
            f"(first: {summary.damaged[0]['file']}: {summary.damaged[0]['note']}): "
            f"see files_damaged in {where}"
        )
    if truth is not None and summary.events is not None:
        # Here, not at the top: the truth tables need pandas, which a plain scan never loads.
        from bioclass.evaluation.truth import event_scores, read_truth

        scores = event_scores(summary.events, read_truth(truth))
        t = Table(title=f"events against {truth}", title_justify="left")
        for column in ("label", "truth", "detections", "matched", "precision", "recall", "f1"):
            t.add_column(column, justify="left" if column == "label" else "right")
        for row in scores.itertuples(index=False):
            t.add_row(
                row.label,
                str(row.truth),
                str(row.detections),
                str(row.matched),
                *(f"{v:.2f}" if v == v else "-" for v in (row.precision, row.recall, row.f1)),
            )
        console.print(t)
