"""Recipes: the YAML files that describe a run, as validated frozen dataclasses."""

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
