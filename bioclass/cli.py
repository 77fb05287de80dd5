"""The `bioclass` command line: a thin shell that parses, calls one function and reports."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from bioclass import __version__
from bioclass.core.console import alerts, console, setup_logging
from bioclass.core.errors import BioclassError
from bioclass.core.process_exit import quick_exit
from bioclass.core.stderr_filter import library_noise_filtered
from bioclass.recipe.vocab import POOLINGS
from bioclass.runtime.interrupt import StoppedAtOnce
from bioclass.scan.options import BACKENDS, EVENT_EDGES, FORMATS

DEVICES = click.Choice(["auto", "cpu", "cuda", "mps"], case_sensitive=False)
# runtime.precision.PRECISIONS, spelled out: importing that module would load torch for --help.
PRECISION_CHOICES = click.Choice(["auto", "fp32", "bf16", "amp"])


def _friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn BioclassError into one red line and exit code 1 (a traceback would mean a bug)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            with library_noise_filtered(enabled=not _VERBOSITY.verbose):
                return func(*args, **kwargs)
        except BioclassError as exc:
            # Escaped: a path or an extra's name in brackets ("bioclass[export]") is text.
            alerts.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            # train and pretrain say what they kept and how to resume; a scan (and the rest)
            # picks up its finished files when run again.
            advice = (
                exc.args[0]
                if isinstance(exc, StoppedAtOnce)
                else "finished files are kept: re-run the same command to continue"
            )
            alerts.print(
                f"[bold red]interrupted[/] ({escape(advice)})", highlight=False, soft_wrap=True
            )
            sys.exit(130)

    return wrapper


# Workflow order: what a new user does first comes first in `bioclass --help`.
WORKFLOW = (
    "train",
    "evaluate",
    "scan",
    "review",
    "embed",
    "pretrain",
    "distill",
    "export",
    "models",
)


class WorkflowGroup(click.Group):
    """Lists the commands in workflow order, not alphabetically."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Each invocation starts from the defaults (one process can run several, e.g. tests);
        # -v/-q callbacks then apply what this one says.
        _VERBOSITY.verbose = _VERBOSITY.quiet = False
        setup_logging()
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = super().list_commands(ctx)
        return [n for n in WORKFLOW if n in names] + [n for n in names if n not in WORKFLOW]


class GroupedCommand(click.Command):
    """A command whose options are listed under headings (`option_groups`: heading -> option
    names); options no group names are listed last under "Other options"."""

    def __init__(self, *args: Any, option_groups: dict[str, list[str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.option_groups = option_groups

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        records = {
            p.name: p.get_help_record(ctx)
            for p in self.get_params(ctx)
            if isinstance(p, click.Option) and p.name is not None
        }
        listed: set[str] = set()
        for heading, names in [*self.option_groups.items(), ("Other options", list(records))]:
            rows = [records[n] for n in names if n not in listed and records.get(n)]
            listed.update(names)
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)  # type: ignore[arg-type]


@dataclass
class Verbosity:
    """-v / -q as given before or after the command name (the last one given wins)."""

    verbose: bool = False
    quiet: bool = False


_VERBOSITY = Verbosity()


def _set_verbosity(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if not value:
        return
    if param.name == "verbose":
        _VERBOSITY.verbose, _VERBOSITY.quiet = True, False
    else:
        _VERBOSITY.verbose, _VERBOSITY.quiet = False, True
    setup_logging(_VERBOSITY.verbose, _VERBOSITY.quiet)


def verbosity_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """-v/--verbose and -q/--quiet, accepted by the group and by every command."""
    quiet = click.option(
        "-q",
        "--quiet",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="No progress bars or tables; warnings and errors still print.",
    )
    verbose = click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_set_verbosity,
        help="More log output (and the audio libraries' own messages).",
    )
    return verbose(quiet(func))


def run_options(example: str | None, out_default: str) -> Callable[[Callable], Callable]:
    """--set, --out and --device, the options of every command that trains from a recipe."""
    options = [
        click.option(
            "--set",
            "overrides",
            multiple=True,
            metavar="SECTION.KEY=VALUE",
            help="Override a recipe value (repeatable)"
            + (f", e.g. --set {example}" if example else "."),
        ),
        click.option(
            "--out",
            type=click.Path(file_okay=False, path_type=Path),
            help=f"Run directory (default: {out_default}).",
        ),
        click.option("--device", type=DEVICES, default="auto", show_default=True),
    ]

    def apply(func: Callable) -> Callable:
        for option in reversed(options):
            func = option(func)
        return func

    return apply


def examples(*lines: str) -> str:
    """A command's epilog: its examples, kept on their own lines by click (the \\b marker)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


@click.group(cls=WorkflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="bioclass")
@verbosity_options
def main() -> None:
    """bioclass: train species classifiers and scan field recordings.

    A usual workflow: train a model, evaluate it, scan recordings, review the detections.
    Every command takes -v/--verbose and -q/--quiet, before or after its name.
    """


@main.command(
    short_help="Train a classifier from a recipe (YAML).",
    epilog=examples(
        "bioclass train recipes/quickstart.yaml --out runs/quickstart",
        "bioclass train recipes/quickstart.yaml --set train.lr=5e-4 --set model.name=resnet22",
    ),
)
@click.argument("recipe", required=False, type=click.Path(dir_okay=False, path_type=Path))
@run_options("train.lr=0.0005", "runs/<recipe>-<time>")
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue the interrupted run in this directory.",
)
@verbosity_options
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


@main.command(
    short_help="Train a small, fast student to reproduce trained models' scores.",
    epilog=examples(
        "bioclass distill runs/cnn10/model.pt --student mobilenetv1 --out runs/student",
        "bioclass distill runs/a/model.pt runs/b/model.pt --student cnn6 "
        "--set data.unlabelled=[field/] --set distill.weight=0.7",
    ),
)
@click.argument(
    "teachers", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
@click.option("--student", required=True, help="Architecture of the student (see bioclass models).")
@click.option(
    "--recipe",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Recipe for the student's data and training (default: the first teacher's recipe).",
)
@run_options("distill.temperature=2", "runs/distill-<student>-<time>")
@verbosity_options
@_friendly
def distill(
    teachers: tuple[Path, ...],
    student: str,
    recipe: Path | None,
    overrides: tuple[str, ...],
    out: Path | None,
    device: str,
) -> None:
    """Train a STUDENT model on the scores of one or more TEACHERS (trained checkpoints).

    The student trains as `bioclass train` does, on the recipe's data (and `data.unlabelled`
    audio, which the teachers score), and is an ordinary model for scan and evaluate. An
    interrupted run continues with `bioclass train --resume RUN`.
    """
    from bioclass.training.distill import distill_recipe
    from bioclass.training.loop import train as run_training

    loaded = distill_recipe(list(teachers), student, recipe, overrides)
    if out is None:
        out = Path("runs") / f"distill-{loaded.model.name}-{datetime.now():%Y%m%d-%H%M%S}"
    run_training(loaded, out, device=device)


# The options of `evaluate --annotations`, by parameter name, for messages.
ANNOTATION_FLAGS = {
    "audio_root": "--audio-root",
    "label_column": "--label-column",
    "label_map": "--map",
    "extent": "--extent",
    "min_overlap_s": "--min-overlap",
    "threshold": "--threshold",
    "thresholds_csv": "--thresholds",
    "bootstrap": "--bootstrap",
    "seed": "--seed",
    "absent": "--absent",
    "scan_out": "--scan-out",
    "hop_seconds": "--hop",
    "mode": "--mode",
    "event_edges": "--event-edges",
    "split_valleys": "--split-valleys",
}


# Two forms: MODEL DATA scores labelled clips; SOURCE --annotations TABLE scores a model, a
# detections CSV or a score matrix against annotation tables. --annotations decides which, and
# the options of the other form are refused rather than silently ignored.
@main.command(
    short_help="Score a model on labelled clips or against annotation tables.",
    epilog=examples(
        "bioclass evaluate runs/quickstart/model.pt sample_data/labels.csv --out eval.json",
        "bioclass evaluate runs/quickstart/model.pt --annotations tables/ --out eval/report.json",
    ),
)
@click.argument("source", metavar="MODEL_OR_DETECTIONS", type=click.Path(path_type=Path))
@click.argument("data", nargs=-1, type=click.Path(path_type=Path))
@click.option("--split", help="Only the rows of this split of a CSV (train, devel, test).")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the metrics as JSON ('-' for stdout); with --annotations, the per-level CSVs "
    "and plots go beside it.",
)
@click.option(
    "--predictions",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write per-clip scores and predicted labels as CSV.",
)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option(
    "--pooling",
    type=click.Choice(POOLINGS),
    help="How the windows of clips longer than the model's window make one score "
    "(default: as in the model's training validation).",
)
@click.option(
    "--calibration",
    type=click.Choice(["on", "off"]),
    help="Apply the calibration fitted in training to the scores (default: on when the "
    "checkpoint has one).",
)
@click.option(
    "--annotations",
    "tables",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Annotation table (Raven, Audacity, CSV) or folder of them, repeatable: evaluate "
    "SOURCE (a model, a detections CSV or a score matrix) against them instead of clips.",
)
@click.option(
    "--audio-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder the annotated recordings are under.",
)
@click.option("--label-column", help="Raven tables' label column (default: Annotation, ...).")
@click.option(
    "--map",
    "label_map",
    multiple=True,
    metavar="OLD=NEW",
    help="Rename an annotation label (repeatable); OLD= drops it.",
)
@click.option(
    "--extent",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV file,start_time,end_time of the annotated stretches (default: whole recordings).",
)
@click.option(
    "--min-overlap",
    "min_overlap_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds of a window a box must cover to make it positive "
    "(default: half the shorter of window and box).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    help="One threshold for every class (model or score matrix; default: the stored ones).",
)
@click.option(
    "--thresholds",
    "thresholds_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV label,threshold for some or all classes (model or score matrix).",
)
@click.option(
    "--bootstrap",
    type=click.IntRange(min=0),
    help="Bootstrap replicates over recordings for the 95% intervals (default 1000; 0: none).",
)
@click.option("--seed", type=int, help="Seed of the bootstrap (default 0).")
@click.option(
    "--absent",
    type=click.Choice(["skip", "empty"]),
    help="Annotated recordings a detections CSV never mentions: skip them (default) or count "
    "them as scanned with nothing found.",
)
@click.option(
    "--scan-out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the model's scan of the annotated recordings here (default: a temporary folder).",
)
@click.option(
    "--hop",
    "hop_seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Scan hop in seconds when SOURCE is a model (default: half a window).",
)
@click.option(
    "--mode", type=click.Choice(["fast", "exact"]), help="Scan mode when SOURCE is a model."
)
@click.option(
    "--event-edges",
    type=click.Choice(EVENT_EDGES),
    help="Event edges at window edges or centres, as scan's (model or score matrix; default: "
    "the scan's).",
)
@click.option(
    "--split-valleys",
    type=click.FloatRange(min=0),
    help="Split events at score valleys this deep (log-odds), as scan's (model or score "
    "matrix; default: the scan's).",
)
@verbosity_options
@_friendly
def evaluate(
    source: Path,
    data: tuple[Path, ...],
    split: str | None,
    out: Path | None,
    predictions: Path | None,
    batch_size: int,
    device: str,
    pooling: str | None,
    calibration: str | None,
    tables: tuple[Path, ...],
    **annotation_options: Any,
) -> None:
    """Score MODEL on labelled DATA (class folders or a labels CSV), or, with --annotations,
    score a model, a detections CSV or a score matrix against annotation tables."""
    if tables:
        # A model given with --annotations is scanned with its calibration (on when it has
        # one), as `bioclass scan` would; the switch belongs to the clip form.
        clip_only = {
            "--split": split,
            "--predictions": predictions,
            "--pooling": pooling,
            "--calibration": calibration,
        }
        given = [flag for flag, value in clip_only.items() if value is not None]
        if given:
            raise BioclassError(
                f"{', '.join(given)} belong to evaluating labelled clips (MODEL DATA), "
                "not to --annotations"
            )
        if data:
            raise BioclassError(
                f"with --annotations, {source} is the only argument (unexpected: {data[0]}); "
                "give each table with its own --annotations, or the folder that holds them"
            )
        _check_output_files(out)
        _evaluate_annotations(source, tables, out, batch_size, device, **annotation_options)
        return
    given = [
        ANNOTATION_FLAGS[name]
        for name, value in annotation_options.items()
        if value is not None and value != ()
    ]
    if given:
        raise BioclassError(
            f"{', '.join(given)} belong to evaluating against annotation tables: add "
            "--annotations TABLE"
        )
    if len(data) != 1:
        raise BioclassError(
            "give labelled DATA (class folders or a labels CSV) after MODEL, or --annotations "
            "TABLE to evaluate against annotation tables"
            if not data
            else f"give one DATA (got {len(data)}: {', '.join(map(str, data[:3]))})"
        )
    model = source
    from bioclass.core.atomic import atomic_write_text
    from bioclass.evaluation.evaluate import evaluate_model
    from bioclass.evaluation.report import print_metrics

    _check_output_files(out, predictions)
    metrics, per_clip, bad = evaluate_model(
        model, data[0], split, batch_size, device, pooling, calibration
    )
    skipped, damaged = bad[~bad["kept"]], bad[bad["kept"]]
    if len(skipped):
        console.print(
            f"[yellow]{len(skipped)} unreadable clip(s) skipped, first: {skipped['error'].iloc[0]}"
        )
    if len(damaged):
        console.print(
            f"[yellow]{len(damaged)} damaged clip(s) scored with their NaN/Inf samples set to 0, "
            f"first: {damaged['error'].iloc[0]}"
        )
    metrics["skipped_files"] = skipped[["file", "error"]].to_dict(orient="records")
    metrics["damaged_files"] = damaged[["file", "error"]].to_dict(orient="records")
    print_metrics(metrics, f"{model} on {data[0]}")
    if predictions is not None:
        atomic_write_text(predictions, per_clip.to_csv(index=False))
    if out is not None:
        text = json.dumps(metrics, indent=2)
        if str(out) == "-":
            click.echo(text)
        else:
            atomic_write_text(out, text + "\n")
            console.print(f"wrote {out}")


def _check_output_files(*paths: Path | None) -> None:
    """One line, before the model is even loaded, when an output file's folder cannot be
    written ('-' is stdout)."""
    from bioclass.core.atomic import check_output_folder

    for path in paths:
        if path is not None and str(path) != "-":
            check_output_folder(path.parent)


def _check_review_folder(out: Path) -> None:
    """One line before the progress bar when the review folder cannot be written, found
    without making it: bad input must leave no empty folder behind (a folder, or a file where
    one should be, is then for `make_review` to make or refuse)."""
    from bioclass.core.atomic import check_output_folder

    existing = next((p for p in (out, *out.parents) if p.exists()), Path.cwd())
    if existing.is_dir():
        if existing == out:
            check_output_folder(out, "the review folder", recursive=True)
        else:
            check_output_folder(existing, "the parent of the review folder")


def _label_mapping(values: tuple[str, ...]) -> dict[str, str | None]:
    """`--map OLD=NEW` (rename) and `--map OLD=` (drop) as the annotation layer's mapping."""
    mapping: dict[str, str | None] = {}
    for value in values:
        old, sep, new = value.partition("=")
        old = old.strip()
        if not sep or not old:
            raise BioclassError(f"--map {value!r}: use OLD=NEW to rename a label, OLD= to drop it")
        target = new.strip() or None
        if mapping.get(old, target) != target:
            raise BioclassError(f"--map: {old!r} is mapped twice ({mapping[old]!r}, {target!r})")
        mapping[old] = target
    return mapping


def _evaluate_annotations(
    source: Path,
    tables: tuple[Path, ...],
    out: Path | None,
    batch_size: int,
    device: str,
    *,
    audio_root: Path | None,
    label_column: str | None,
    label_map: tuple[str, ...],
    extent: Path | None,
    min_overlap_s: float | None,
    threshold: float | None,
    thresholds_csv: Path | None,
    bootstrap: int | None,
    seed: int | None,
    absent: str | None,
    scan_out: Path | None,
    hop_seconds: float | None,
    mode: str | None,
    event_edges: str | None,
    split_valleys: float | None,
) -> None:
    from bioclass.evaluation.annotated import AnnotationSettings
    from bioclass.evaluation.annotation_report import (
        print_annotation_report,
        write_annotation_report,
    )
    from bioclass.scan.evaluate_annotations import (
        EventChoices,
        ScanChoices,
        ThresholdChoices,
        evaluate_source,
    )

    defaults = AnnotationSettings()
    settings = AnnotationSettings(
        min_overlap_s=min_overlap_s,
        bootstrap=defaults.bootstrap if bootstrap is None else bootstrap,
        seed=defaults.seed if seed is None else seed,
        absent=absent,
    )
    report = evaluate_source(
        source,
        tables,
        settings,
        audio_root=audio_root,
        label_column=label_column,
        mapping=_label_mapping(label_map),
        extent=extent,
        thresholds=ThresholdChoices(threshold, thresholds_csv),
        scan_choices=ScanChoices(hop_seconds, mode, batch_size, device, scan_out),
        event_choices=EventChoices(event_edges, split_valleys),
    )
    print_annotation_report(report)
    if out is None:
        return
    if str(out) == "-":
        click.echo(json.dumps(report.to_json(), indent=2))
        console.print("the per-level CSVs and plots need a file name: --out report.json")
        return
    written = write_annotation_report(report, out)
    console.print(f"wrote {out} and {len(written) - 1} table(s) and plot(s) beside it")


@main.command(
    short_help="List the model registry with parameter counts.",
    epilog=examples(
        "bioclass models --classes 10 --sample-rate 32000",
    ),
)
@click.option(
    "--classes",
    default=5,
    show_default=True,
    type=click.IntRange(min=0),
    help="Number of output classes the counts assume.",
)
@click.option("--sample-rate", default=16000, show_default=True, type=click.IntRange(min=1000))
@verbosity_options
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


def _channels(value: str) -> str | int:
    if value in ("mix", "each"):
        return value
    if value.isdigit():
        return int(value)
    raise click.BadParameter("use mix, each or a channel number (0 = first)")


# `bioclass scan --help` lists its many options under these headings, by parameter name.
def ray_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --ray options of `scan` and `embed` (passed on as ray_* parameters)."""
    options = [
        click.option(
            "--ray",
            "ray_address",
            metavar="local|auto|ADDRESS",
            help="Score on Ray workers: local (start Ray here), auto (the cluster this machine "
            'joined with `ray start`) or host:port. Needs pip install "bioclass[ray]".',
        ),
        click.option(
            "--ray-workers",
            type=int,
            help="Ray workers, each loading the model(s) once (default: as many as the "
            "cluster's CPUs/GPUs hold).",
        ),
        click.option(
            "--ray-cpus-per-worker",
            type=float,
            default=1.0,
            show_default=True,
            help="CPUs per worker (its torch threads).",
        ),
        click.option(
            "--ray-gpus-per-worker",
            type=float,
            default=0.0,
            show_default=True,
            help="GPUs per worker (0.5: two workers share one).",
        ),
        click.option(
            "--ray-segment-minutes",
            type=float,
            help="Cut files into segments of about this much audio, scored apart (default: "
            "cut only when there are fewer files than workers).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _ray_settings(params: dict[str, Any]) -> Any:
    """The --ray options popped from `params`: RaySettings, checked (Ray installed, numbers
    sensible), or None without --ray."""
    values = {k: params.pop(k) for k in [k for k in params if k.startswith("ray_")]}
    if values.get("ray_address") is None:
        return None
    from bioclass.runtime.ray_cluster import RaySettings, import_ray

    settings = RaySettings(
        values["ray_address"],
        values["ray_workers"],
        values["ray_cpus_per_worker"],
        values["ray_gpus_per_worker"],
        values["ray_segment_minutes"],
    )
    import_ray()
    return settings


SCAN_OPTION_GROUPS = {
    "Inputs": ["models", "list_file", "channels", "max_failures"],
    "Windows": ["hop_seconds", "overlap", "calibration"],
    "Decisions": [
        "threshold",
        "thresholds_csv",
        "keep_background",
        "classes_filter",
        "exclude_classes",
        "top_n",
        "merge",
        "min_gap_s",
        "min_duration_s",
        "event_edges",
        "split_valleys",
    ],
    "Outputs": ["out", "formats", "scores_path", "metadata", "truth"],
    "Performance": ["batch_size", "workers", "device", "mode", "precision", "backend"],
    "Ray cluster": [
        "ray_address",
        "ray_workers",
        "ray_cpus_per_worker",
        "ray_gpus_per_worker",
        "ray_segment_minutes",
    ],
}


# The scan options' parameter names are ScanOptions' field names: the command passes them on as
# they come, after the few conversions Click does not do.
@main.command(
    cls=GroupedCommand,
    option_groups=SCAN_OPTION_GROUPS,
    short_help="Tag long recordings with species labels (detection tables).",
    epilog=examples(
        "bioclass scan recordings/ --model runs/quickstart/model.pt --out site.csv --format raven",
        "bioclass scan 'site*/2024*.wav' --model model.pt --classes @species.txt --top-n 3",
    ),
)
@click.argument("inputs", nargs=-1, type=str)
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Checkpoint from `bioclass train` (an ONNX file from `bioclass export` with "
    "--backend onnxruntime); repeat for an ensemble (scores averaged).",
)
@click.option(
    "--out",
    default="detections.csv",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Detections CSV ('-' for stdout); other outputs go beside it.",
)
@click.option(
    "--from-list",
    "list_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Text file of paths to scan, one per line.",
)
@click.option(
    "--hop",
    "hop_seconds",
    type=float,
    help="Seconds between window starts (default: half a window).",
)
@click.option(
    "--overlap",
    type=click.FloatRange(0, 1, max_open=True),
    help="Window overlap fraction instead of --hop (0.5 = half a window).",
)
@click.option(
    "--channels",
    default="mix",
    show_default=True,
    help="mix (mean to mono), each (every channel; adds a channel column) or N.",
)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Files decoded and scored in parallel.",
)
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option(
    "--mode",
    type=click.Choice(["fast", "exact"]),
    default="fast",
    show_default=True,
    help="fast: trunk once per block, windows pooled from it (exact when windows are too "
    "short for it, or do not overlap); exact: every window alone.",
)
@click.option(
    "--precision",
    type=PRECISION_CHOICES,
    default="auto",
    show_default=True,
    help="auto: AMP on CUDA, bf16 on a CPU that computes it natively and faster, else fp32 "
    "(the manifest says which and why); amp = autocast on CUDA.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default="torch",
    show_default=True,
    help="torch: --model is a checkpoint; onnxruntime: --model is an ONNX file from "
    "`bioclass export`, run on the CPU in exact mode, fp32.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    help="One score threshold for every class (default: the per-class thresholds "
    "fitted in training, else 0.5).",
)
@click.option(
    "--thresholds",
    "thresholds_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    help="CSV label,threshold overriding the checkpoint's fitted thresholds.",
)
@click.option("--keep-background", is_flag=True, help="Also report background windows.")
@click.option(
    "--classes",
    "classes_filter",
    metavar="A,B|@FILE",
    help="Write only these classes (comma-separated, or @FILE with one per line).",
)
@click.option(
    "--exclude-classes",
    metavar="A,B|@FILE",
    help="Do not write these classes (comma-separated, or @FILE with one per line).",
)
@click.option(
    "--top-n",
    type=click.IntRange(min=1),
    help="Up to N labels per window: its N best-scoring classes that reach their thresholds "
    "(default: its top class only).",
)
@click.option(
    "--no-merge",
    "merge",
    is_flag=True,
    flag_value=False,
    default=True,
    help="One row per window instead of merged events.",
)
@click.option(
    "--min-gap",
    "min_gap_s",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Merge same-label events separated by at most this many seconds.",
)
@click.option(
    "--min-duration",
    "min_duration_s",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Drop events shorter than this many seconds.",
)
@click.option(
    "--event-edges",
    type=click.Choice(EVENT_EDGES),
    default="window",
    show_default=True,
    help="Where merged events begin and end: at the edges of their first and last windows, "
    "or half a hop around their windows' centres.",
)
@click.option(
    "--split-valleys",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Split an event where its score dips at least this much in log-odds below the "
    "highest scores on both sides (0: never).",
)
@click.option(
    "--format",
    "formats",
    multiple=True,
    type=click.Choice(FORMATS),
    help="Output formats (repeatable): csv (default), raven (one selection table per "
    "recording), audacity (label and score tracks per recording), kaleidoscope.",
)
@click.option(
    "--raven-combined",
    is_flag=True,
    help="Also write one Raven table for all files (Raven's multi-file layout) and the list "
    "file that opens them in Raven; implies --format raven.",
)
@click.option(
    "--scores",
    "scores_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every window's class scores (.parquet or .csv).",
)
@click.option(
    "--max-failures", type=click.IntRange(min=1), help="Stop after this many unreadable files."
)
@click.option("--metadata", is_flag=True, help="Add run metadata columns to the CSV.")
@click.option(
    "--calibration",
    type=click.Choice(["on", "off"]),
    help="Apply the calibration fitted in training to the scores (default: on when the "
    "checkpoint has one).",
)
@click.option(
    "--truth",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Truth table (start_time,end_time,label[,file]): print event precision/recall.",
)
@ray_options
@verbosity_options
@_friendly
def scan(
    inputs: tuple[str, ...],
    models: tuple[Path, ...],
    list_file: Path | None,
    truth: Path | None,
    **params: Any,
) -> None:
    """Tag long recordings (files, folders, globs) with species labels."""
    from bioclass.audio.discover import collect_inputs
    from bioclass.core.console import DeferredProgress
    from bioclass.scan.assemble import check_output_folders
    from bioclass.scan.classfilter import class_list
    from bioclass.scan.options import DEFAULT_FORMATS, ScanOptions
    from bioclass.scan.progress import ProgressLog
    from bioclass.scan.report import print_scan_report
    from bioclass.scan.runner import scan as run_scan

    ray = _ray_settings(params)
    options = ScanOptions(
        **{
            **params,
            "channels": _channels(params["channels"]),
            "formats": tuple(params["formats"]) or DEFAULT_FORMATS,
            "collect_events": truth is not None,
            "classes_filter": class_list(params["classes_filter"], "--classes"),
            "exclude_classes": class_list(params["exclude_classes"], "--exclude-classes") or (),
        }
    )
    distributor = None
    if ray is not None:
        from bioclass.scan.ray_dispatch import RayDistributor

        distributor = RayDistributor(ray)
    check_output_folders(options)  # before the inputs are listed and the progress bar starts
    if truth is not None:  # only then pandas, which truth tables need
        from bioclass.evaluation.truth import read_truth

        read_truth(truth)  # a wrong table is found now, not after the scan
    files = collect_inputs(inputs, list_file)
    # Where stderr is a log file the bar is not drawn: a plain line now and then instead.
    log_line = None if console.is_terminal or console.quiet else ProgressLog(len(files))
    # The bar appears once the models, hop and class filters have been checked (on_start).
    with DeferredProgress("scanning", len(files)) as progress:

        def on_file(path: Path, seconds: float) -> None:
            if distributor is None:  # a Ray scan's bar shows the workers' progress instead
                progress.update(advance=1, info=path.name)
            if log_line is not None:
                log_line(path, seconds)

        if distributor is not None:
            distributor.on_progress = lambda p: progress.update(
                completed=p.files_done, info=p.line()
            )
        try:
            summary = run_scan(
                files,
                list(models),
                options,
                on_file=on_file,
                on_start=progress.start,
                distributor=distributor,
            )
        except BioclassError:
            progress.hide()  # e.g. a refusal: its one line says it all
            raise
    print_scan_report(summary, options, truth)
    if summary.stopped_early:
        raise BioclassError(
            f"stopped after {summary.n_failed} unreadable files (--max-failures); "
            "fix or remove them, then re-run to continue"
        )
    if summary.all_failed:
        raise BioclassError(
            f"none of the {summary.n_files} file(s) could be scanned: the reasons are in "
            f"{summary.outputs.get('failed')}"
        )


@main.command(
    short_help="Learn an encoder from unlabelled recordings (contrastive).",
    epilog=examples(
        "bioclass pretrain archive/ --recipe recipes/pretrain_simclr.yaml --out runs/encoder",
    ),
)
@click.argument("archives", nargs=-1, type=str)
@click.option(
    "--recipe",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Pretraining recipe (YAML), e.g. recipes/pretrain_simclr.yaml.",
)
@run_options(None, "runs/<recipe>-<time>")
@click.option(
    "--resume",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue the interrupted pretraining in this directory.",
)
@verbosity_options
@_friendly
def pretrain(
    archives: tuple[str, ...],
    recipe: Path | None,
    overrides: tuple[str, ...],
    out: Path | None,
    device: str,
    resume: Path | None,
) -> None:
    """Learn an encoder from unlabelled ARCHIVES (folders, files, globs) by contrastive
    learning; `train` starts from it with --set model.init_from=OUT/encoder.pt."""
    from bioclass.pretrain.loop import pretrain as run_pretraining
    from bioclass.recipe import load_recipe

    if resume is not None:
        if recipe is not None or overrides or archives:
            raise BioclassError(
                "--resume continues with the saved recipe and archives: give "
                "no ARCHIVES, --recipe or --set"
            )
        run_pretraining(None, [], resume, device=device, resume=True)
        return
    if recipe is None:
        raise BioclassError("give --recipe (e.g. recipes/pretrain_simclr.yaml), or --resume DIR")
    loaded = load_recipe(recipe, overrides)
    if out is None:
        out = Path("runs") / f"{recipe.stem}-{datetime.now():%Y%m%d-%H%M%S}"
    run_pretraining(loaded, list(archives), out, device=device)


# As for scan: the parameter names are EmbedOptions' field names.
@main.command(
    short_help="Per-window embeddings of recordings from a model or encoder.",
    epilog=examples(
        "bioclass embed recordings/ --model runs/encoder/encoder.pt --out embeddings.parquet",
    ),
)
@click.argument("inputs", nargs=-1, type=str)
@click.option(
    "--model",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A classifier (`bioclass train`) or encoder (`bioclass pretrain`) checkpoint.",
)
@click.option(
    "--out",
    default="embeddings.parquet",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Output table (.parquet or .csv).",
)
@click.option(
    "--from-list",
    "list_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Text file of paths, one per line.",
)
@click.option(
    "--window",
    "window_seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Window seconds (default: the checkpoint's clip or patch length).",
)
@click.option(
    "--hop",
    "hop_seconds",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds between window starts (default: the window, no overlap).",
)
@click.option(
    "--channels",
    default="mix",
    show_default=True,
    help="mix (mean to mono), each (every channel) or N.",
)
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--device", type=DEVICES, default="auto", show_default=True)
@click.option(
    "--mode",
    type=click.Choice(["fast", "exact"]),
    default="exact",
    show_default=True,
    help="exact: every window alone; fast: trunk once per block.",
)
@click.option(
    "--precision",
    type=PRECISION_CHOICES,
    default="auto",
    show_default=True,
    help="As for `bioclass scan`.",
)
@ray_options
@verbosity_options
@_friendly
def embed(
    inputs: tuple[str, ...], model: Path | None, list_file: Path | None, **params: Any
) -> None:
    """Per-window embeddings of recordings (INPUTS: files, folders, globs) from --model, a
    classifier or a pretrained encoder (the argument order of `bioclass scan`)."""
    from bioclass.audio.discover import collect_inputs
    from bioclass.core.console import DeferredProgress
    from bioclass.embed import EmbedOptions
    from bioclass.embed import embed as run_embed
    from bioclass.outputs.writers import check_scores_path

    model, inputs = _embed_model(model, inputs)
    ray = _ray_settings(params)
    options = EmbedOptions(**{**params, "channels": _channels(params["channels"])})
    # Before the inputs are listed and the progress bar starts: the format, then the folder.
    check_scores_path(options.out, "--out")
    _check_output_files(options.out)
    files = collect_inputs(inputs, list_file)
    # The bar appears with the first file embedded, so a refused model is one line without it.
    pool = None
    if ray is not None:
        from bioclass.inference.ray_pool import RayPool

        pool = RayPool(ray)
    with DeferredProgress("embedding", len(files)) as progress:
        if pool is None:
            on_file = lambda p: progress.update(advance=1, info=p.name)  # noqa: E731
        else:  # the bar shows the workers' progress
            on_file = None
            pool.on_progress = lambda p: progress.update(completed=p.files_done, info=p.line())
        summary = run_embed(files, model, options, on_file=on_file, pool=pool)
    console.print(
        f"{summary.n_windows} windows x {summary.dim} dims from "
        f"{summary.n_files - len(summary.failed)} file(s) "
        f"({summary.audio_seconds / 3600:.3f} h) in {summary.wall_seconds:.1f} s "
        f"-> {options.out}"
    )
    if summary.failed:
        console.print(
            f"[yellow]{len(summary.failed)} file(s) could not be read: see "
            f"{summary.outputs['failed']}"
        )
    if summary.damaged:
        first = summary.damaged[0]
        console.print(
            f"[yellow]{len(summary.damaged)} damaged file(s) embedded in part or repaired; "
            f"first: {first['file']}: {first['note']}"
        )


def _embed_model(model: Path | None, inputs: tuple[str, ...]) -> tuple[Path, tuple[str, ...]]:
    """The model and the inputs of `embed`, from `INPUTS... --model M` or the older form
    `MODEL INPUTS...` (still accepted, with a note)."""
    if model is not None:
        return model, inputs
    from bioclass.audio.io import AUDIO_EXTENSIONS

    first = Path(inputs[0]) if inputs else None
    # The older form's MODEL is whatever is neither audio, a folder nor a pattern of them.
    if (
        first is None
        or first.suffix.lower() in AUDIO_EXTENSIONS
        or first.is_dir()
        or any(c in inputs[0] for c in "*?[")
    ):
        raise BioclassError("give the model with --model: bioclass embed INPUTS... --model MODEL")
    alerts.print(
        f"note: `bioclass embed MODEL INPUTS...` is deprecated; write `bioclass embed "
        f"INPUTS... --model {inputs[0]}` (the order of `bioclass scan`)",
        highlight=False,
        soft_wrap=True,
    )
    return Path(inputs[0]), inputs[1:]


@main.command(
    short_help="Cut clips of a scan's detections to listen to and judge.",
    epilog=examples(
        "bioclass review site.csv --out review/ --per-class 20",
        "bioclass review site.csv --out review/ --verdicts-from tables/",
    ),
)
@click.argument("detections", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(path_type=Path),
    help="Review folder: clips, review.csv, review.selections.txt.",
)
@click.option(
    "--strategy",
    type=click.Choice(["top", "random", "stratified"]),
    default="stratified",
    show_default=True,
    help="Per class: the top N by score, a random N, or N spread over score bins.",
)
@click.option(
    "--per-class",
    default=20,
    show_default=True,
    type=click.IntRange(min=1),
    help="Clips per class (all of a class's detections when it has fewer).",
)
@click.option(
    "--bins",
    type=click.IntRange(min=1),
    help="Equal-width score bins of --strategy stratified.  [default: 5]",
)
@click.option(
    "--seed",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Draws of the random and stratified strategies.",
)
@click.option(
    "--pad",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds of context before and after each detection (clamped to the recording).",
)
@click.option("--labels", metavar="A,B", help="Only these classes (comma-separated).")
@click.option(
    "--audio-root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder the recordings are under, when the CSV's paths are not valid here.",
)
@click.option(
    "--clip-format",
    type=click.Choice(["flac", "wav"]),
    default="flac",
    show_default=True,
)
@click.option(
    "--verdicts-from",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="TABLE",
    help="Fill the verdicts from annotation tables or folders of them (Raven, Audacity, CSV); "
    "repeatable.",
)
@click.option("--force", is_flag=True, help="Replace a review.csv that already holds verdicts.")
@verbosity_options
@_friendly
def review(
    detections: Path,
    labels: str | None,
    bins: int | None,
    verdicts_from: tuple[Path, ...],
    **params: Any,
) -> None:
    """Cut clips of a sample of DETECTIONS (a scan's CSV) to listen to, with review.csv for the
    verdicts (yes, no or another class) and a Raven table that plays them in order."""
    from bioclass.core.console import progress_bar
    from bioclass.review import ReviewOptions, make_review
    from bioclass.review.report import print_review_report

    if bins is not None and params["strategy"] != "stratified":
        raise BioclassError("--bins is for --strategy stratified")
    chosen = None
    if labels is not None:
        chosen = tuple(dict.fromkeys(name.strip() for name in labels.split(",") if name.strip()))
        if not chosen:
            raise BioclassError("--labels: give class names separated by commas")
    options = ReviewOptions(
        **params, bins=5 if bins is None else bins, labels=chosen, verdicts_from=verdicts_from
    )
    _check_review_folder(options.out)
    with progress_bar() as progress:
        task = progress.add_task("cutting clips", total=None, info="")
        summary = make_review(
            detections,
            options,
            on_clip=lambda done, total: progress.update(task, completed=done, total=total),
        )
    print_review_report(summary, detections, options)


@main.command(
    "export",
    short_help="Export a model as one ONNX or TorchScript file.",
    epilog=examples(
        "bioclass export runs/quickstart/model.pt --format onnx --out model.onnx",
        "bioclass export model.pt --format onnx --int8 recordings/ --out model.int8.onnx",
    ),
)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    metavar="onnx|torchscript",
    help="onnx (needs pip install 'bioclass[export]') or torchscript.",
)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The file to write.")
@click.option(
    "--int8",
    "int8_audio",
    multiple=True,
    metavar="AUDIO",
    help="Quantize to int8 (ONNX only), calibrated and checked on windows of this audio "
    "(files, folders, globs; repeatable): the recordings the model will scan.",
)
@verbosity_options
@_friendly
def export(model: Path, fmt: str, out: Path, int8_audio: tuple[str, ...]) -> None:
    """Export MODEL (a classifier checkpoint) with its front end as one ONNX or TorchScript file
    that runs without bioclass: (batch, window) float32 waveforms in, (batch, classes) logits
    out, with classes, rate, window, activation, calibration and thresholds as metadata."""
    from bioclass.export import export_model

    summary = export_model(model, fmt, out, list(int8_audio) if int8_audio else None)
    meta = summary.metadata
    kind = summary.format if summary.int8 is None else f"{summary.format}, int8"
    console.print(
        f"wrote {summary.path} ({kind}, {summary.size_bytes / 1e6:.1f} MB): "
        f"{meta['model_name']}, (batch, {meta['window_samples']}) float32 at "
        f"{meta['sample_rate']} Hz -> (batch, {len(meta['classes'])}) logits, "
        f"{meta['activation']} scores; max |difference| from the PyTorch model "
        f"{summary.max_abs_diff:.1e} on a test signal"
        + ("" if summary.int8 is None else " (before quantization)"),
        highlight=False,
        soft_wrap=True,
    )
    check = summary.int8
    if check is not None:
        console.print(
            f"int8 against float32 on {check.windows} held-out windows of {check.files} "
            f"recording(s) (ranges set on {check.calibration_windows} others): top class the "
            f"same on {100 * check.agreement:.1f} %, scores differ by at most "
            f"{check.max_score_diff:.3f} (mean {check.mean_score_diff:.4f}); "
            f"{check.speedup:.2f}x float32's speed on this CPU",
            highlight=False,
            soft_wrap=True,
        )
        if check.speedup < 1.0:
            alerts.print(
                f"warning: the int8 model ran at {check.speedup:.2f}x the float32 export's speed "
                "on this CPU (no VNNI, or depthwise convolutions): scan with the float32 export "
                "here",
                highlight=False,
                soft_wrap=True,
            )


def run() -> None:
    """The `bioclass` executable (and `python -m bioclass`): the command line, then an exit
    without the interpreter's teardown (`core.process_exit`). Tests call `main` itself."""
    try:
        main()
        status: object = 0
    except SystemExit as exc:
        status = exc.code
    quick_exit(status)
