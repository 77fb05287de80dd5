"""The `bioclass` command line: a thin shell that parses, calls one function and reports."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from bioclass import __version__
from bioclass.console import console, setup_logging
from bioclass.errors import BioclassError

DEVICES = click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False)


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn BioclassError into one red line and exit code 1 (a traceback would mean a bug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except BioclassError as exc:
            console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except KeyboardInterrupt:
            console.print("[bold red]interrupted[/]")
            sys.exit(130)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bioclass")
@click.option("-v", "--verbose", is_flag=True, help="More log output.")
def main(verbose: bool) -> None:
    """bioclass: train species classifiers and scan field recordings."""
    setup_logging(verbose)


@main.command()
@click.argument("recipe", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="SECTION.KEY=VALUE",
    help="Override a recipe value (repeatable), e.g. --set train.lr=0.0005",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default: runs/<recipe>-<time>).",
)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue the interrupted run in this directory.",
)
@_friendly
def train(
    recipe: Path | None,
    overrides: tuple[str, ...],
    out: Path | None,
    device: str,
    resume: Path | None,
) -> None:
    """Train a classifier from a RECIPE (YAML)."""
    from bioclass.recipe import load_recipe
    from bioclass.training.loop import train as run_training

    if resume is not None:
        if recipe is not None or overrides:
            raise BioclassError("--resume continues with the saved recipe: give no RECIPE or --set")
        run_training(None, resume, device=device, resume=True)  # type: ignore[arg-type]
        return
    if recipe is None:
        raise BioclassError("give a RECIPE file (or --resume RUN_DIR)")
    loaded = load_recipe(recipe, overrides)
    if out is None:
        out = Path("runs") / f"{recipe.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    run_training(loaded, out, device=device)


@main.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--split", help="Only the rows of this split of a CSV (train, devel, test).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the metrics as JSON ('-' for stdout).",
)
@click.option(
    "--predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write per-clip scores and predicted labels as CSV.",
)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@_friendly
def evaluate(
    model: Path,
    data: Path,
    split: str | None,
    out: Path | None,
    predictions: Path | None,
    batch_size: int,
    device: str,
) -> None:
    """Score MODEL (a checkpoint) on labelled DATA (class folders or a labels CSV)."""
    from bioclass.evaluation.evaluate import evaluate_model
    from bioclass.training.report import print_metrics

    metrics, per_clip, bad = evaluate_model(model, data, split, batch_size, device)
    if len(bad):
        console.print(
            f"[yellow]{len(bad)} unreadable clip(s) skipped, first: {bad['error'].iloc[0]}"
        )
    metrics["skipped_files"] = bad.to_dict(orient="records")
    print_metrics(metrics, f"{model} on {data}")
    if predictions is not None:
        per_clip.to_csv(predictions, index=False)
    if out is not None:
        text = json.dumps(metrics, indent=2)
        if str(out) == "-":
            click.echo(text)
        else:
            out.write_text(text + "\n", encoding="utf-8")
            console.print(f"wrote {out}")


@main.command()
@click.option(
    "--classes",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Number of output classes the counts assume.",
)
@click.option("--sample-rate", default=16000, show_default=True, type=click.IntRange(min=1000))
@_friendly
def models(classes: int, sample_rate: int) -> None:
    """List the model registry with parameter counts."""
    from rich.console import Console
    from rich.table import Table

    from bioclass.models import MODEL_NAMES, FrontendConfig, count_parameters, create_model

    table = Table(title=f"models ({classes} classes)", title_justify="left")
    table.add_column("name")
    table.add_column("parameters", justify="right")
    for name in MODEL_NAMES:
        model = create_model(name, classes, FrontendConfig(sample_rate=sample_rate))
        table.add_row(name, f"{count_parameters(model) / 1e6:.2f} M")
    Console().print(table)  # the listing is the command's output: stdout
