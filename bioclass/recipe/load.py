"""Read, validate and override recipes: YAML in, frozen `Recipe` out, every mistake named."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from bioclass.core.errors import BioclassError
from bioclass.recipe.schema import (
    LIST_PATH_KEYS,
    LOSSES,
    METRICS,
    PATH_KEYS,
    PRETRAIN_LOSSES,
    SAMPLINGS,
    SCHEDULES,
    Recipe,
)


class RecipeError(BioclassError):
    """A recipe that cannot be used as written."""


def load_recipe(path: str | Path, overrides: typing.Sequence[str] = ()) -> Recipe:
    """Load a YAML recipe, apply `section.key=value` overrides and validate everything.

    Relative paths written in the file are relative to the file's folder; relative paths given
    in overrides are relative to the current directory (where the user typed them).
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise RecipeError(
            f"{path}: not valid YAML{where}: {getattr(exc, 'problem', exc)}"
        ) from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise RecipeError(
            f"{path}: a recipe must be a mapping of sections, got {type(raw).__name__}"
        )
    _resolve_paths(raw, path.parent.resolve())
    overridden = parse_overrides(overrides)
    _resolve_paths(overridden, Path.cwd())
    merged = _merge(raw, overridden)
    return recipe_from_dict(merged, source=str(path))


def recipe_from_dict(data: dict[str, Any], source: str = "recipe") -> Recipe:
    """Build a validated `Recipe` from nested plain data (as YAML or a checkpoint holds it)."""
    recipe = _build(Recipe, data, prefix="", source=source)
    _check_values(recipe, source)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Nested plain data (JSON/YAML-able) of a recipe."""
    return dataclasses.asdict(recipe)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML text."""
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def parse_overrides(overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Turn `["train.lr=0.01", ...]` into a nested dict; values are parsed as YAML scalars."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set {item!r}: expected section.key=value")
        node = nested
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {item!r}: {part} is not a section")
        try:
            node[parts[-1]] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            node[parts[-1]] = value
    return nested


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _resolve_paths(raw: dict[str, Any], base: Path) -> None:
    def resolve(text: str) -> str:
        value = Path(text).expanduser()
        return str(value if value.is_absolute() else (base / value).resolve())

    for section, key in PATH_KEYS:
        node = raw.get(section)
        if not isinstance(node, dict):
            continue
        if (section, key) in LIST_PATH_KEYS and isinstance(node.get(key), str):
            node[key] = [node[key]]  # one folder where a list of folders is expected
        if isinstance(node.get(key), str) and node[key]:
            node[key] = resolve(node[key])
        elif isinstance(node.get(key), list):
            node[key] = [resolve(v) if isinstance(v, str) and v else v for v in node[key]]


def _did_you_mean(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise RecipeError(
                f"{source}: unknown key '{prefix}{key}'{_did_you_mean(str(key), fields)}"
                f" (valid: {', '.join(fields)})"
            )
    values = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(
                hint, value if value is not None else {}, f"{prefix}{name}.", source
            )
        else:
            values[name] = _coerce(value, hint, f"{prefix}{name}", source)
    return cls(**values)


def _coerce(value: Any, hint: Any, key: str, source: str) -> Any:
    """Check `value` against a simple type hint (int, float, bool, str, list[str], Optional)."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise RecipeError(f"{source}: {key} must be a list of names, got {value!r}")
        return [str(v) for v in value]
    if hint is float and isinstance(value, str):
        # YAML 1.1 reads `1e-3` (no dot) as a string; it is how learning rates are written.
        try:
            return float(value)
        except ValueError:
            pass
    ok = (
        (hint is bool and isinstance(value, bool))
        or (hint is int and isinstance(value, int) and not isinstance(value, bool))
        or (hint is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (hint is str and isinstance(value, str))
    )
    if not ok:
        raise RecipeError(
            f"{source}: {key} must be {_TYPE_NAMES[hint]}, got {value!r}"
        )
    return float(value) if hint is float else value


_TYPE_NAMES = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}


def _check_values(recipe: Recipe, source: str) -> None:
    def fail(msg: str) -> None:
        raise RecipeError(f"{source}: {msg}")

    a, d, t, g = recipe.audio, recipe.data, recipe.train, recipe.augment
    for key, value in (
        ("audio.sample_rate", a.sample_rate),
        ("audio.n_fft", a.n_fft),
        ("audio.hop_length", a.hop_length),
        ("audio.n_mels", a.n_mels),
        ("train.batch_size", t.batch_size),
        ("train.eval_every", t.eval_every),
    ):
        if value <= 0:
            fail(f"{key} must be positive, got {value}")
    if a.clip_seconds <= 0:
        fail(f"audio.clip_seconds must be positive, got {a.clip_seconds}")
    nyquist = a.sample_rate / 2
    if a.f_max is not None and not a.f_min < a.f_max <= nyquist:
        fail(f"audio.f_max must be in (f_min, {nyquist:g}] for sample_rate {a.sample_rate}")
    if a.f_min < 0 or a.f_min >= nyquist:
        fail(f"audio.f_min must be in [0, {nyquist:g})")
    if a.channel is not None and a.channel < 0:
        fail(f"audio.channel must be >= 0 or null (mix to mono), got {a.channel}")
    if d.root and d.labels_csv:
        fail("give either data.root (a folder per class) or data.labels_csv, not both")
    if not 0.0 < d.val_fraction < 1.0:
        fail(f"data.val_fraction must be between 0 and 1, got {d.val_fraction}")
    if not 0.0 <= d.max_bad_fraction <= 1.0:
        fail(f"data.max_bad_fraction must be between 0 and 1, got {d.max_bad_fraction}")
    if d.classes is not None and len(set(d.classes)) != len(d.classes):
        fail("data.classes lists a class twice")
    if t.iterations is not None and t.epochs is not None:
        fail("give either train.iterations or train.epochs, not both")
    if (t.iterations is not None and t.iterations <= 0) or (t.epochs is not None and t.epochs <= 0):
        fail("train.iterations and train.epochs must be positive")
    if t.lr <= 0:
        fail(f"train.lr must be positive, got {t.lr}")
    if not 0.0 <= t.ema_decay < 1.0:
        fail(f"train.ema_decay must be in [0, 1), got {t.ema_decay}")
    if t.metric not in METRICS:
        fail(f"train.metric must be one of {', '.join(METRICS)}{_did_you_mean(t.metric, METRICS)}")
    if t.schedule not in SCHEDULES:
        fail(f"train.schedule must be one of {', '.join(SCHEDULES)}")
    if t.num_workers < 0 or t.warmup_iterations < 0 or t.ema_start < 0:
        fail("train.num_workers, warmup_iterations and ema_start must be >= 0")
    if g.mixup_alpha < 0:
        fail(f"augment.mixup_alpha must be >= 0, got {g.mixup_alpha}")
    if min(g.time_stripes, g.time_width, g.freq_stripes, g.freq_width) < 0:
        fail("augment stripe counts and widths must be >= 0")
    if not 0.0 <= recipe.model.dropout < 1.0 or not 0.0 <= recipe.model.block_dropout < 1.0:
        fail("model.dropout and model.block_dropout must be in [0, 1)")
    if d.labelled_per_class is not None and d.labelled_per_class < 1:
        fail(f"data.labelled_per_class must be >= 1 or null, got {d.labelled_per_class}")
    if not 0.0 < d.labelled_fraction <= 1.0:
        fail(f"data.labelled_fraction must be in (0, 1], got {d.labelled_fraction}")
    if t.unlabelled_ratio < 0:
        fail(f"train.unlabelled_ratio must be >= 0, got {t.unlabelled_ratio}")
    _check_loss(recipe, fail)
    _check_pretrain(recipe, fail)
    # Imported here: the augment modules import the schema, not this loader.
    from bioclass.augment.views import check_view_augment
    from bioclass.augment.wave import check_wave_augment

    problems = check_wave_augment(recipe.wave_augment) + check_view_augment(recipe.pretrain.views)
    if problems:
        fail(problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def _check_loss(recipe: Recipe, fail: typing.Callable[[str], None]) -> None:
    loss = recipe.loss
    if loss.name not in LOSSES:
        fail(f"loss.name must be one of {', '.join(LOSSES)}{_did_you_mean(loss.name, LOSSES)}")
    if recipe.augment.mixup_alpha > 0 and loss.name not in ("auto", "ce", "bce"):
        fail(f"augment.mixup_alpha needs loss.name auto, ce or bce: {loss.name} needs a hard "
             "label per clip (set augment.mixup_alpha: 0)")
    if not 0.0 <= loss.alpha <= 1.0:
        fail(f"loss.alpha must be in [0, 1], got {loss.alpha}")
    if loss.temperature <= 0:
        fail(f"loss.temperature must be positive, got {loss.temperature}")
    if loss.projection_dim < 1:
        fail(f"loss.projection_dim must be >= 1, got {loss.projection_dim}")
    if loss.margin < 0:
        fail(f"loss.margin must be >= 0 (radians), got {loss.margin}")
    if not 0.0 < loss.supcon_fraction < 1.0:
        fail(f"loss.supcon_fraction must be in (0, 1), got {loss.supcon_fraction}")
    if recipe.model.freeze_encoder and loss.name not in ("auto", "ce", "bce"):
        fail(f"model.freeze_encoder trains only the last layer: use loss.name ce (not "
             f"{loss.name})")


def _check_pretrain(recipe: Recipe, fail: typing.Callable[[str], None]) -> None:
    p = recipe.pretrain
    if p.loss not in PRETRAIN_LOSSES:
        fail(f"pretrain.loss must be one of {', '.join(PRETRAIN_LOSSES)}"
             f"{_did_you_mean(p.loss, PRETRAIN_LOSSES)}")
    if p.sampling not in SAMPLINGS:
        fail(f"pretrain.sampling must be one of {', '.join(SAMPLINGS)}"
             f"{_did_you_mean(p.sampling, SAMPLINGS)}")
    if p.patch_seconds <= 0:
        fail(f"pretrain.patch_seconds must be positive, got {p.patch_seconds}")
    if not 0.0 <= p.mixback_alpha <= 1.0:
        fail(f"pretrain.mixback_alpha must be in [0, 1], got {p.mixback_alpha}")
    if p.temperature <= 0:
        fail(f"pretrain.temperature must be positive, got {p.temperature}")
    if not 0.0 <= p.acl_alpha <= 1.0:
        fail(f"pretrain.acl_alpha must be in [0, 1], got {p.acl_alpha}")
    if p.margin < 0:
        fail(f"pretrain.margin must be >= 0 (radians), got {p.margin}")
    if p.projection_dim < 1 or (p.projection_hidden is not None and p.projection_hidden < 1):
        fail("pretrain.projection_dim and pretrain.projection_hidden must be >= 1")
    if p.knn_k < 1 or p.probe_epochs < 1:
        fail("pretrain.knn_k and pretrain.probe_epochs must be >= 1")
