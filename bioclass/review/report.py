"""Terminal report of a review: what was cut, what was skipped, where it went."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from bioclass.core.console import console
from bioclass.review.build import ReviewOptions, ReviewSummary


def print_review_report(summary: ReviewSummary, detections: Path, options: ReviewOptions) -> None:
    """Clips per class, skipped recordings, filled verdicts and the output paths."""
    if summary.n_detections == 0:
        console.print(
            f"[yellow]{detections} holds no detections: wrote an empty review to {options.out}",
            highlight=False,
            soft_wrap=True,
        )
        return
    strategy = options.strategy + (
        f", {options.bins} bins" if options.strategy == "stratified" else ""
    )
    table = Table(title=f"review ({strategy})", title_justify="left", show_header=False)
    table.add_row("detections", str(summary.n_detections))
    for label, n in summary.per_class.items():
        table.add_row(f"  {label}", f"{n} clip(s)")
    table.add_row("clips", str(summary.n_clips))
    if summary.verdicts:
        table.add_row(
            "verdicts", ", ".join(f"{v} {n}" for v, n in sorted(summary.verdicts.items()))
        )
    for name, path in summary.outputs.items():
        table.add_row(name, path)
    console.print(table)
    if summary.failed:
        console.print(
            f"[yellow]{len(summary.failed)} problem(s) with recordings: {summary.n_skipped} "
            f"detection(s) skipped (see {summary.outputs['failed']}); first: "
            f"{summary.failed[0][1]}",
            highlight=False,
            soft_wrap=True,
        )
    if summary.uncovered:
        console.print(
            f"[yellow]{len(summary.uncovered)} recording(s) are not covered by the annotation "
            f"tables: their clips keep an empty verdict; first: {summary.uncovered[0]}",
            highlight=False,
            soft_wrap=True,
        )
    if summary.n_mixed:
        console.print(
            f"[yellow]{summary.n_mixed} clip(s) overlap boxes of several classes: each got one "
            "verdict (yes when its own class is there, else the class it overlaps most), which "
            "data.reviewed reads as that class alone there; train with the same tables in "
            "data.annotations so the other classes' boxes count too",
            highlight=False,
            soft_wrap=True,
        )
    if summary.nonfinite:
        clip, n = summary.nonfinite[0]
        console.print(
            f"[yellow]{len(summary.nonfinite)} clip(s) held NaN/Inf samples (damaged float "
            f"recordings), written as 0; first: {clip} ({n} sample(s))",
            highlight=False,
            soft_wrap=True,
        )
    if summary.n_removed:
        console.print(f"removed {summary.n_removed} clip(s) of the previous review in this folder")
    if summary.n_clips == 0:
        console.print("[yellow]no clip could be cut: the review is empty")
