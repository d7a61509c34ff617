"""Named end-to-end recipes: one table (`RECIPES`) of complete jobs — world text, tokenizer, shards, model,
training, what to show at the end — and `run`, which executes one. `lmlab train` is `run`; `lmlab recipes` lists
the table. See docs/recipes.md.

    from lmlab.recipes import run, format_result
    print(format_result(run("arithmetic")))
"""

from lmlab.recipes.reports import format_report
from lmlab.recipes.runner import (RecipeResult, ensure_shards, finetune, format_result, get_recipe,
                                  preset_settings, recipe_for, recipe_names, run)
from lmlab.recipes.table import FINETUNE_TRAIN, RECIPES, DataRecipe, Recipe, WorldText, format_recipes

__all__ = ["RECIPES", "FINETUNE_TRAIN", "finetune", "Recipe", "DataRecipe", "WorldText", "RecipeResult", "run", "get_recipe", "recipe_for",
           "recipe_names", "preset_settings", "ensure_shards", "format_result", "format_report", "format_recipes"]

