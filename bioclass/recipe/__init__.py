"""Recipes: the YAML files that describe a run, as validated frozen dataclasses.

The loaders and the schema are imported on first use: the command line's `--help` reads the
names in `bioclass.recipe.vocab` and should not pay for PyYAML and the schema to do so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bioclass.recipe.load import (
        RecipeError,
        dump_recipe,
        load_recipe,
        override_recipe,
        recipe_from_dict,
        recipe_to_dict,
    )
    from bioclass.recipe.schema import Recipe

__all__ = [
    "Recipe",
    "RecipeError",
    "dump_recipe",
    "load_recipe",
    "override_recipe",
    "recipe_from_dict",
    "recipe_to_dict",
]

_HOMES = {name: "bioclass.recipe.load" for name in __all__ if name != "Recipe"}
_HOMES["Recipe"] = "bioclass.recipe.schema"


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name]), name)
    raise AttributeError(f"module 'bioclass.recipe' has no attribute {name!r}")
