"""`lmlab train` (lmlab.recipes.run: a named recipe, by default `world`, the main job; or a preset on your data)
and `lmlab recipes` (the recipes table)."""

from __future__ import annotations


def train_arguments(p) -> None:
    p.add_argument("--recipe", metavar="NAME",
                   help="named end-to-end job to run (lmlab recipes lists them; default: world when no data is "
                        "given); with --data/--text, its settings on your data")
    p.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings (flat, or model:/training: sections)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="DATA_DIR", help="token shards made by `lmlab data prepare`")
    src.add_argument("--text", metavar="PATH", nargs="+", help="raw text files/dirs, prepared into RUN_DIR/data")
    p.add_argument("--val", metavar="PATH", nargs="+",
                   help="with --text: your own validation text (default: 10%% of the documents, or of one file's end)")
    p.add_argument("--tokenizer", metavar="FILE|char|word|bpe",
                   help="with --text: tokenizer file or kind to train (default bpe; word for --model "
                        "cooc|ppmi|word2vec); with --data: must match")
    p.add_argument("--preset", help="named model shape (default tiny; with --model TYPE, that type's default, e.g. "
                                    "ngram3, lstm-tiny); trained with the settings of the recipe that names it")
    p.add_argument("--model", dest="model_type", metavar="TYPE", help="model type from the registry (default gpt)")
    p.add_argument("--out", metavar="RUN_DIR", help="run dir to write (default: the recipe's, e.g. runs/tiny; with "
                                                    "--data/--text runs/PRESET or runs/TYPE; with --init: "
                                                    "INIT-continued)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or status lines")
    p.add_argument("--init", metavar="RUN_DIR",
                   help="continued pretraining: start from this run's weights, tokenizer and shape (a trained or "
                        "imported run) and train on --text/--data into a new --out")
    p.add_argument("--replay", type=float, default=0.0, metavar="SHARE",
                   help="with --init: mix this share (0..1) of the base run's original training data into the "
                        "train split (default 0)")
    p.add_argument("--replay-data", metavar="DATA_DIR",
                   help="with --replay: the original shards (default: the data dir the base run recorded)")


TRAIN_EPILOG = "Distributed: torchrun --nproc_per_node N -m lmlab train --data DIR --out RUN ... (see docs/training.md)"


def cmd_train(args) -> int:
    """train a model (no arguments: the recipe `world`, the tiny GPT on the built-in world)

    Train a model into a run dir. Any model or training setting can be given as --key value (e.g. --lr 3e-4
    --n_layer 2 --max_iters 500); precedence: preset < recipe < --config FILE < --key value. With no data option
    at all, runs the recipe `world` (the main job): builds the default world corpus, trains the tiny GPT on it and
    prints val perplexity and sample completions; --recipe NAME runs another (`lmlab recipes` lists them). With
    --data/--text, the preset is trained with the settings of the recipe that names it. See docs/recipes.md and
    docs/training.md.
    """
    from lmlab.recipes import format_result, run
    from lmlab.training.distributed import launch_rank

    result = run(args.recipe, out=args.out, overrides=args.overrides, config_file=args.config, data_dir=args.data,
                 text=args.text, val_text=args.val, tokenizer=args.tokenizer, model_type=args.model_type,
                 preset=args.preset, resume=args.resume, overwrite=args.overwrite, init=args.init,
                 replay=args.replay, replay_data=args.replay_data, progress=args.progress)
    if launch_rank() == 0:  # torchrun's other ranks train but print nothing
        print(format_result(result))
    return 0


def recipes_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="print every recipe's full settings as JSON")


def cmd_recipes(args) -> int:
    """list the named recipes `lmlab train --recipe NAME` runs

    The named end-to-end jobs (world text → tokenizer → shards → model → training → report), with the minutes each
    takes on a 2-core CPU, what it shows and what it writes. See docs/recipes.md.
    """
    import dataclasses

    from lmlab.cli.options import dumps
    from lmlab.recipes import RECIPES, format_recipes

    if args.json:
        print(dumps({name: dataclasses.asdict(r) for name, r in RECIPES.items()}))
    else:
        print(format_recipes())
    return 0
