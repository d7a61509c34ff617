"""`lmlab train`: the train verb and the main job (`lmlab train` with no data option: world → BPE shards → tiny
GPT → perplexity and sample completions). A file of its own that adds its own parser to the table
(lmlab.cli.main), so the verb can be replaced whole."""

from __future__ import annotations

import sys


def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model (no arguments: the tiny GPT on the built-in world)",
        description="Train a model into a run dir. Any model or training setting can be given as --key value "
                    "(e.g. --lr 3e-4 --n_layer 2 --max_iters 500); precedence: preset < --config FILE < --key "
                    "value. With no data option at all, runs the main job: builds the default world corpus, "
                    "trains the tiny GPT on it and prints val perplexity and sample completions.",
        epilog="Distributed: torchrun --nproc_per_node N -m lmlab train --data DIR --out RUN ... "
               "(see docs/training.md)")
    p.add_argument("--config", metavar="FILE", help="JSON or YAML file of settings (flat, or model:/training: sections)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", metavar="DATA_DIR", help="token shards made by `lmlab data prepare`")
    src.add_argument("--text", metavar="PATH", nargs="+", help="raw text files/dirs, prepared into RUN_DIR/data")
    p.add_argument("--val", metavar="PATH", nargs="+",
                   help="with --text: your own validation text (default: 10%% of the documents, or of one file's end)")
    p.add_argument("--tokenizer", metavar="FILE|char|word|bpe",
                   help="with --text: tokenizer file or kind to train (default bpe; word for --model "
                        "cooc|ppmi|word2vec); with --data: must match")
    p.add_argument("--preset", help="named model shape + training settings (default tiny; with --model "
                                    "TYPE, that type's default, e.g. ngram3, lstm-tiny)")
    p.add_argument("--model", dest="model_type", metavar="TYPE", help="model type from the registry (default gpt)")
    p.add_argument("--out", metavar="RUN_DIR", help="run dir to write (default runs/PRESET, or runs/TYPE with --model; "
                                                    "with --init: INIT-continued)")
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
    p.set_defaults(func=cmd_train, accepts_overrides=True)


# The main job (`lmlab train` with no data option): world → BPE shards → tiny GPT. Sizes are tuned so that it
# finishes in under 10 minutes on a 2-core CPU and the model learns the world's facts (docs/training.md).
MAIN_WORLD_DIR, MAIN_DATA_DIR, MAIN_RUN_DIR = "runs/world", "runs/world-data", "runs/tiny"
# 2 MB: 9 countries, 396 static facts, each mentioned ~63 times per epoch; 3000 steps of the tiny preset are ~9.5
# epochs (~540 exposures per fact), enough to memorise them, in ~6.5 min at ~16k tokens/s.
MAIN_WORLD = dict(seed=0, size="2MB")
# Paragraphs are the documents (so the val split is a random 10% of paragraphs, not one whole file), and no dedup:
# the world repeats each fact on purpose (see docs/world.md), and the repetitions are how the model learns them.
MAIN_DATA = dict(vocab_size=1024, numbers="digits", split_blank_lines=True, dedup="none")
# float32 even where `--dtype auto` would pick bf16 (CPUs with AVX512-BF16 or AMX): the documented experiments and
# the evaluation and editing bars were measured on this fp32 model, and fp32 trains the same model on every CPU of
# one kind (CPUs with other vector instructions round differently; docs/training.md gives the figures).
# `--dtype` on the command line (or in --config) wins.
MAIN_TRAIN = dict(dtype="float32")


def cmd_train(args) -> int:
    if args.data is None and args.text is None and not args.resume and args.init is None:
        return _train_main_job(args)
    # --model ngram alone: runs/ngram; --init runs/tiny: runs/tiny-continued
    out = args.out or (f"{args.init.rstrip('/')}-continued" if args.init
                       else f"runs/{args.preset or args.model_type or 'tiny'}")
    result = _train_run_once(out, data_dir=args.data, text=args.text, val_text=args.val, tokenizer=args.tokenizer,
                       preset=args.preset,
                       model_type=args.model_type, config_file=args.config, overrides=args.overrides,
                       resume=args.resume, overwrite=args.overwrite, progress=args.progress, init=args.init,
                       replay=args.replay, replay_data=args.replay_data)
    _print_train_result(result)
    return 0


def _train_run_once(*a, **kw):
    """`train_run`, then leave the process group if torchrun started one (so the process exits cleanly)."""
    from lmlab.training import teardown_distributed, train_run

    try:
        return train_run(*a, **kw)
    finally:
        teardown_distributed()


def _is_main_rank() -> bool:
    """False on torchrun's ranks other than 0, which train but print nothing."""
    from lmlab.training.distributed import launch_rank

    return launch_rank() == 0


def _print_train_result(result) -> None:
    import math

    if not _is_main_rank():
        return
    line = f"trained {result.step} steps into {result.run_dir} ({result.stop_reason}, {result.wall_seconds:.0f} s)"
    if result.last_val_loss is not None:
        line += (f"; val loss {result.last_val_loss:.4f} (perplexity {math.exp(min(result.last_val_loss, 50)):.2f}), "
                 f"best {result.best_val_loss:.4f}")
    print(line)


def _train_main_job(args) -> int:
    """World corpus (if missing) → BPE shards (if missing) → train the tiny GPT → perplexity + completions."""
    from pathlib import Path

    from lmlab.data import prepare
    from lmlab.world import generate_world, is_world

    world_dir, data_dir = Path(MAIN_WORLD_DIR), Path(MAIN_DATA_DIR)
    out = Path(args.out or MAIN_RUN_DIR)
    say = (lambda msg: print(msg, file=sys.stderr)) if args.progress else (lambda msg: None)
    if not is_world(world_dir):
        say(f"[1/3] generating the world corpus into {world_dir}")
        generate_world(world_dir, progress=args.progress, **MAIN_WORLD)
    if not (data_dir / "manifest.json").is_file():
        say(f"[2/3] preparing BPE shards into {data_dir}")
        prepare(world_dir / "corpus", "bpe", data_dir, progress=args.progress, **MAIN_DATA)
    say(f"[3/3] training the {args.preset or 'tiny'} GPT into {out}")
    from lmlab.training.config import parse_override_args

    overrides = parse_override_args(args.overrides or [])
    if args.config is None:
        overrides = {**MAIN_TRAIN, **overrides}
    result = _train_run_once(out, data_dir=data_dir, tokenizer=args.tokenizer, preset=args.preset,
                       model_type=args.model_type, config_file=args.config, overrides=overrides,
                       overwrite=True, progress=args.progress)
    _print_train_result(result)
    _print_world_completions(out, world_dir)
    return 0


def _print_world_completions(run_dir, world_dir, n: int = 5) -> None:
    """Greedy completions of a few world prompts by the trained model."""
    from lmlab.checkpoint import load_run
    from lmlab.generation import generate
    from lmlab.world import sample_prompts

    run = load_run(run_dir)
    prompts = sample_prompts(world_dir, n, seed=0)
    completions = generate(run.model, run.tokenizer, prompts, max_new_tokens=16, temperature=0.0, stop=["\n", "."])
    print("sample completions (greedy):")
    for prompt, c in zip(prompts, completions):
        print(f"  {prompt!r} → {c.text!r}")
