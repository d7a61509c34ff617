"""`run`: execute a named recipe (world → shards → training → report), or train on the user's own data with the
settings of the recipe that owns the chosen model preset. Everything `lmlab train` does goes through here."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from lmlab.data import prepare
from lmlab.errors import LmlabError
from lmlab.models.registry import default_preset, get_model_type, preset_model_type
from lmlab.recipes.reports import REPORTS, format_report
from lmlab.recipes.table import FINETUNE_TRAIN, RECIPES, Recipe
from lmlab.recipes.texts import compose_world_text
from lmlab.training import TrainResult, load_config_file, train_run
from lmlab.training.distributed import launch_rank, teardown_distributed
from lmlab.training.metrics import format_train_result
from lmlab.world import generate_world, is_world


@dataclass
class RecipeResult:
    """What `run` returns: the recipe that ran (None: plain training with no recipe's settings), the training
    result, and the data of the recipe's end report ({} when it has none or trained on other data)."""

    recipe: str | None
    train: TrainResult
    report: dict[str, Any] = field(default_factory=dict)


def recipe_names() -> list[str]:
    return list(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; LmlabError listing the recipes for an unknown one."""
    if name not in RECIPES:
        import difflib

        close = difflib.get_close_matches(name, RECIPES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise LmlabError(f"unknown recipe {name!r}{hint}; `lmlab recipes` lists them: {', '.join(RECIPES)}")
    return RECIPES[name]


def recipe_for(model_type: str | None = None, preset: str | None = None) -> Recipe | None:
    """The recipe that trains `preset` of `model_type` (either may be None: the GPT, a type's default preset), whose
    training settings `lmlab train --preset P --data DIR` uses; None when no recipe trains that preset."""
    model_type = model_type or preset_model_type(preset) or "gpt"
    preset = preset or ("tiny" if model_type == "gpt" else default_preset(model_type))
    return next((r for r in RECIPES.values() if r.model_type == model_type and r.model_preset == preset), None)


def preset_settings(model_type: str | None = None, preset: str | None = None, *,
                    config_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """Training settings {key: value} a preset is trained with (its recipe's, without the recipe's dtype pin; {}
    for a preset no recipe trains): the `base_settings` of lmlab.training.train_run and lmlab.training.plan. A
    preset or model type named in `config_file` counts where the argument is None."""
    file_values = load_config_file(config_file) if config_file is not None else {}
    recipe = recipe_for(model_type or file_values.get("model_type"), preset or file_values.get("preset"))
    return recipe.settings(named=False) if recipe is not None else {}


def run(name: str | None = None, *, out: str | os.PathLike | None = None,
        overrides: Mapping[str, Any] | list[str] | None = None, config_file: str | os.PathLike | None = None,
        data_dir: str | os.PathLike | None = None, text: Sequence[str | os.PathLike] | None = None,
        val_text: Sequence[str | os.PathLike] | None = None, tokenizer: str | None = None,
        model_type: str | None = None, preset: str | None = None, resume: bool = False, overwrite: bool = False,
        init: str | os.PathLike | None = None, replay: float = 0.0, replay_data: str | os.PathLike | None = None,
        progress: bool = True, on_eval: Callable | None = None) -> RecipeResult:
    """Run recipe `name` (lmlab.recipes.RECIPES) into the run dir `out` (default: the recipe's); returns the
    training result and the end report's data (`format_result` prints both).

    With no name and no data, the recipe "world" (the main job) runs. A named recipe on its own data builds the
    world and shards if missing and replaces an earlier run in `out`; with the user's data (`data_dir` or `text`,
    as lmlab.training.train_run takes them) it trains on that instead, with the recipe's model and training
    settings. With data and no name, the settings are those of the recipe that owns the model preset (see
    `recipe_for`), or TrainConfig's defaults. Settings: preset < recipe < config_file < overrides. `resume` and
    `init` continue an existing run with its own settings (no recipe). on_eval(record, model): called after each
    evaluation (lmlab.training.train). Under torchrun every rank calls this; the
    process group is left at the end, so the process exits cleanly.
    """
    try:
        return _run(name, out=out, overrides=overrides, config_file=config_file, data_dir=data_dir, text=text,
                    val_text=val_text, tokenizer=tokenizer, model_type=model_type, preset=preset, resume=resume,
                    overwrite=overwrite, init=init, replay=replay, replay_data=replay_data, progress=progress,
                    on_eval=on_eval)
    finally:
        teardown_distributed()


def _run(name, *, out, overrides, config_file, data_dir, text, val_text, tokenizer, model_type, preset, resume,
         overwrite, init, replay, replay_data, progress, on_eval) -> RecipeResult:
    user_data = data_dir is not None or text is not None
    if resume or init is not None:
        if name is not None:
            raise LmlabError("--recipe starts a new run; --resume and --init continue one with its own settings")
        out = out or (f"{str(init).rstrip('/')}-continued" if init is not None else _default_out(preset, model_type))
        return RecipeResult(None, train_run(out, data_dir=data_dir, text=text, val_text=val_text, tokenizer=tokenizer,
                                            preset=preset, model_type=model_type, config_file=config_file,
                                            overrides=overrides, resume=resume, overwrite=overwrite,
                                            progress=progress, init=init, replay=replay, replay_data=replay_data,
                                            on_eval=on_eval))
    if replay or replay_data is not None:
        raise LmlabError("--replay mixes in the original data of the run given with --init; add --init RUN_DIR")
    if name is None and user_data:
        return _train_with_preset_settings(out, config_file, data_dir=data_dir, text=text, val_text=val_text,
                                           tokenizer=tokenizer, preset=preset, model_type=model_type,
                                           overrides=overrides, overwrite=overwrite, progress=progress,
                                           on_eval=on_eval)
    recipe = get_recipe(name or "world")
    if model_type is not None and model_type != recipe.model_type:
        raise LmlabError(f"recipe {recipe.name} trains a {recipe.model_type} model, not --model {model_type}; "
                         f"leave out --model or choose another recipe (`lmlab recipes`)")
    train_kwargs = dict(preset=preset or recipe.model_preset, model_type=recipe.model_type, config_file=config_file,
                        overrides=overrides, tokenizer=tokenizer, progress=progress, on_eval=on_eval,
                        base_settings=recipe.settings(named=True))
    world_dir = None
    if user_data:
        if text is not None and tokenizer is None and not recipe.data.tokenizer.startswith("recipe:"):
            train_kwargs["tokenizer"] = recipe.data.tokenizer  # the kind the recipe trains on its text (char...)
        result = train_run(out or f"runs/{recipe.name}", data_dir=data_dir, text=text, val_text=val_text,
                           overwrite=overwrite, **train_kwargs)
        shows_report = recipe.data.text is None  # a recipe made for the user's text (shakespeare-char)
    elif recipe.data.text is None:
        raise LmlabError(f"recipe {recipe.name} trains on your own text: add --text FILE... (for "
                         f"{recipe.name}: {recipe.shows.split(': ', 1)[-1]})")
    else:
        world_dir = recipe.data.text.world_dir
        data = ensure_shards(recipe, progress=progress)
        out = Path(out or recipe.out)
        _say(progress, f"[3/3] training the {train_kwargs['preset'] or recipe.model_type} "
                       f"{'GPT' if recipe.model_type == 'gpt' else recipe.model_type} into {out}")
        result = train_run(out, data_dir=data, overwrite=True, **train_kwargs)
        shows_report = True
    if not shows_report or launch_rank() != 0:
        return RecipeResult(recipe.name, result)
    return RecipeResult(recipe.name, result, REPORTS[recipe.report](result.run_dir, world_dir))


def ensure_shards(recipe: Recipe, *, progress: bool = True) -> Path:
    """The token shards of a world recipe: the world is generated and the shards prepared unless already there
    (recipes with the same text and tokenizer share them); returns the shards' directory."""
    data, text = recipe.data, recipe.data.text
    if text is None or data.data_dir is None:
        raise LmlabError(f"recipe {recipe.name} has no shards of its own (it trains on the user's text)")
    if not is_world(text.world_dir):
        _say(progress, f"[1/3] generating the world corpus into {text.world_dir}")
        generate_world(text.world_dir, seed=text.seed, size=text.size, progress=progress)
    data_dir = Path(data.data_dir)
    if (data_dir / "manifest.json").is_file():
        return data_dir
    tokenizer: Any = data.tokenizer
    if tokenizer.startswith("recipe:"):  # the tokenizer of another recipe's shards, made first if missing
        tokenizer = ensure_shards(get_recipe(tokenizer[len("recipe:"):]), progress=progress) / "tokenizer.json"
    kind = {"bpe": "BPE", "char": "character", "word": "word-level"}.get(data.tokenizer, data.tokenizer)
    _say(progress, f"[2/3] preparing {kind} shards into {data_dir}")
    specials = tuple(getattr(get_model_type(recipe.model_type)[1], "special_tokens", ()))
    trained_here = not isinstance(tokenizer, Path)
    prepare(compose_world_text(text, data.text_dir), tokenizer, data_dir,
            split_blank_lines=data.split_blank_lines, dedup=data.dedup, progress=progress,
            **(dict(vocab_size=data.vocab_size, numbers=data.numbers, special_tokens=specials) if trained_here else {}))
    return data_dir


def finetune(out_dir: str | os.PathLike, *, model: str = "gpt", instructions: str | os.PathLike | None = None,
             resume: bool = False, **kwargs) -> TrainResult:
    """`lmlab finetune`: lmlab.training.finetune.finetune with the training settings the recipes table gives the
    classifier kind `model` (or instruction tuning, with `instructions`) under the caller's `overrides`; the same
    arguments and result. A resumed run keeps its own settings."""
    from lmlab.training.finetune import finetune as finetune_run

    kind = "instructions" if instructions is not None else model
    base = {} if resume else FINETUNE_TRAIN.get(kind, {})  # an unknown kind: finetune_run names the valid ones
    return finetune_run(out_dir, model=model, instructions=instructions, resume=resume, base_settings=base,
                        **kwargs)


def _train_with_preset_settings(out, config_file, *, preset, model_type, **kwargs) -> RecipeResult:
    """`lmlab train --data DIR` (or --text): the model preset trained with the settings of the recipe that owns it
    (a preset or model type named in --config counts too)."""
    settings = preset_settings(model_type, preset, config_file=config_file)
    result = train_run(out or _default_out(preset, model_type), preset=preset, model_type=model_type,
                       config_file=config_file, base_settings=settings, **kwargs)
    return RecipeResult(None, result)


def _default_out(preset: str | None, model_type: str | None) -> str:
    # --model ngram alone: runs/ngram; nothing: runs/tiny
    return f"runs/{preset or model_type or 'tiny'}"


def format_result(result: RecipeResult) -> str:
    """The lines `lmlab train` prints: the training summary, then the recipe's report."""
    return "\n".join([format_train_result(result.train), *format_report(result.report)])


def _say(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr)
