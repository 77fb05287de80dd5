"""Read, override and type-check recipes: YAML in, frozen `Recipe` out, every mistake named.

The rules for the values themselves live in `bioclass.recipe.validate`.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from bioclass.core.errors import BioclassError
from bioclass.recipe.quote import QUOTE_LIMIT, quote, shorten
from bioclass.recipe.rules import did_you_mean
from bioclass.recipe.schema import LIST_PATH_KEYS, PATH_KEYS, Recipe
from bioclass.recipe.validate import recipe_problem
from bioclass.recipe.yaml_bounds import MAX_DEPTH, RecipeBoundsError, load_yaml


class RecipeError(BioclassError):
    """A recipe that cannot be used as written."""


def load_recipe(path: str | Path, overrides: typing.Sequence[str] = ()) -> Recipe:
    """Load a YAML recipe, apply `section.key=value` overrides and validate everything.

    Relative paths written in the file are relative to the file's folder; relative paths given
    in overrides are relative to the current directory (where the user typed them). The file
    and the overrides are read within the bounds of `bioclass.recipe.yaml_bounds`.
    """
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"recipe not found: {path}")
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RecipeError(f"{path}: {_yaml_problem(exc)}") from None
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
    problem = recipe_problem(recipe)
    if problem is not None:
        raise RecipeError(f"{source}: {problem}")
    return recipe


def override_recipe(
    data: dict[str, Any], overrides: typing.Sequence[str], source: str = "recipe"
) -> Recipe:
    """A recipe from nested plain data (paths already absolute, as a checkpoint holds them) with
    `section.key=value` overrides applied (their relative paths: from the current directory)."""
    overridden = parse_overrides(overrides)
    _resolve_paths(overridden, Path.cwd())
    return recipe_from_dict(_merge(data, overridden), source=source)


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    """Nested plain data (JSON/YAML-able) of a recipe."""
    return dataclasses.asdict(recipe)


def dump_recipe(recipe: Recipe) -> str:
    """The resolved recipe as YAML text."""
    return yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False)


def parse_overrides(overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Turn `["train.lr=0.01", ...]` into a nested dict; values are parsed as YAML, within the
    bounds a recipe file is read with (text that is not YAML is kept as a string)."""
    nested: dict[str, Any] = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise RecipeError(f"--set {quote(item)}: expected section.key=value")
        parts = key.strip().split(".")
        if len(parts) > MAX_DEPTH:
            raise RecipeError(f"--set {quote(item)}: a key of more than {MAX_DEPTH} parts")
        node = nested
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeError(f"--set {quote(item)}: {shorten(part)} is not a section")
        try:
            node[parts[-1]] = load_yaml(value) if value.strip() else None
        except RecipeBoundsError as exc:
            raise RecipeError(f"--set {quote(item)}: {_yaml_problem(exc)}") from None
        except yaml.YAMLError:
            node[parts[-1]] = value
    return nested


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line for a YAML error: what, where, and the problem. PyYAML's problems may quote the
    text (a tag, a value), so they are cut short; the bounds' own are short already."""
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1})" if mark is not None else ""
    problem = str(getattr(exc, "problem", None) or exc)
    if isinstance(exc, RecipeBoundsError):
        return f"refused{where}: {problem}"
    return f"not valid YAML{where}: {shorten(problem, 2 * QUOTE_LIMIT)}"


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


def _build(cls: type, data: Any, prefix: str, source: str) -> Any:
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, dict):
        raise RecipeError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            raise RecipeError(
                f"{source}: unknown key '{shorten(f'{prefix}{key}')}'"
                f"{did_you_mean(str(key), fields)} (valid: {', '.join(fields)})"
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
    """Check `value` against a simple type hint (int, float, bool, str, list[str],
    dict[str, str | None], Optional)."""
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key, source)
    if origin is dict:  # a label mapping: name -> name, or null to drop
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str | int) and (v is None or isinstance(v, str | int))
            for k, v in value.items()
        ):
            raise RecipeError(f"{source}: {key} must map names to a name or null, got {value!r}")
        return {str(k): None if v is None else str(v) for k, v in value.items()}
    if origin is list:
        if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
            raise RecipeError(f"{source}: {key} must be a list of names, got {quote(value)}")
        return [str(v) for v in value]
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:  # an integer of hundreds of digits
            raise RecipeError(
                f"{source}: {key} must be a finite number, got {quote(value)}"
            ) from None
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
        raise RecipeError(f"{source}: {key} must be {_TYPE_NAMES[hint]}, got {quote(value)}")
    return float(value) if hint is float else value


_TYPE_NAMES = {float: "a number", int: "an integer", bool: "true or false", str: "a string"}
