"""`lmlab eval ppl|tasks|list|classify|translation|instructions`: the one `eval` group and its table of
sub-commands."""

from __future__ import annotations

from lmlab.cli.options import add_device, add_json, add_run_dir, add_weights, dumps
from lmlab.errors import LmlabError


# ======================================================================================================== ppl ===
def ppl_arguments(pp) -> None:
    add_run_dir(pp)
    pp.add_argument("--data", default=None, metavar="DIR|FILE",
                    help="shard directory or text file (default: the data dir recorded by training)")
    pp.add_argument("--split", default="val", help="split of a shard directory (default val)")
    pp.add_argument("--batch-size", type=int, default=8, metavar="N", help="windows per forward pass (default 8)")
    pp.add_argument("--stride", type=int, default=None, metavar="S",
                    help="window step in tokens (default block_size: non-overlapping windows)")
    add_json(pp, "print the figures as JSON")
    add_device(pp)
    add_weights(pp)
    pp.add_argument("--knn", default=None, metavar="DATASTORE", help="also interpolate with a kNN-LM datastore")
    pp.add_argument("--infgram", default=None, metavar="DATA_DIR", help="also interpolate with the ∞-gram of an "
                                                                        "indexed shard dir")
    pp.add_argument("--lambda", dest="lam", type=float, default=0.25, help="interpolation weight (default 0.25)")
    pp.add_argument("--k", type=int, default=64, help="kNN neighbours (default 64)")
    pp.add_argument("--knn-temperature", type=float, default=1.0, help="kNN softmax temperature (default 1)")
    pp.add_argument("--max-tokens", type=int, default=None, metavar="N", help="with --knn/--infgram: first N tokens")


def cmd_ppl(args) -> int:
    """perplexity and bits-per-byte on shards or a text file

    Perplexity, bits per token and bits per byte of a run's model on a split of a shard directory (`lmlab data
    prepare`) or on a UTF-8 text file.
    """
    if args.knn or args.infgram:
        return cmd_ppl_memory(args)
    from lmlab.evaluation.perplexity import eval_ppl, format_perplexity

    r = eval_ppl(args.run_dir, args.data, split=args.split, batch_size=args.batch_size, stride=args.stride,
                 device=args.device, weights=args.weights, progress=True)
    print(dumps(r, ascii=True) if args.json else format_perplexity(r))
    return 0


def cmd_ppl_memory(args) -> int:
    """`lmlab eval ppl RUN --knn DATASTORE | --infgram DATA_DIR`: perplexity with and without interpolation."""
    from lmlab.attribution import memory_perplexity
    from lmlab.attribution.reports import format_memory_perplexity

    if args.weights != "fp32":
        raise LmlabError("--weights bf16|int8 applies to plain perplexity; --knn/--infgram interpolation runs "
                         "the model in fp32 (leave out --weights)")
    r = memory_perplexity(args.run_dir, data=args.data, split=args.split, knn=args.knn, infgram=args.infgram,
                          lam=args.lam, k=args.k, temperature=args.knn_temperature, max_tokens=args.max_tokens,
                          batch_size=args.batch_size, device=args.device)
    print(dumps(r, ascii=True) if args.json else format_memory_perplexity(r))
    return 0


# ================================================================================================ tasks / list ===
def tasks_arguments(t) -> None:
    add_run_dir(t, "run dir (lmlab train, or lmlab import hf-gpt2)")
    t.add_argument("--tasks", required=True, metavar="NAME[,NAME...]",
                   help="built-in names or groups (lmlab eval list), NAME:PATH for file tasks, or task YAML files")
    t.add_argument("--shots", default=None, metavar="K[,K...]",
                   help="solved examples before each item, e.g. 5 or 0,1,5 (default: each task's num_fewshot, 0)")
    t.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N items of each task")
    t.add_argument("--batch-size", type=int, default=16, metavar="N", help="sequences per forward pass (default 16)")
    t.add_argument("--seed", type=int, default=1234,
                   help="seed of generated tasks, few-shot draws and the bootstrap (default 1234)")
    t.add_argument("--world", default=None, metavar="DIR",
                   help="world dir for world tasks (default runs/world); also makes arithmetic and scrambling "
                        "use the world's held-out items")
    t.add_argument("--out", default=None, metavar="FILE",
                   help="results JSON (default RUN_DIR/eval/results.json); the item log goes beside it")
    t.add_argument("--checkpoints", action="store_true",
                   help="a learning curve: evaluate every checkpoint training kept (train with --keep_checkpoints "
                        "true), one row per step")
    add_device(t)
    add_weights(t)
    add_json(t, "print the results as JSON instead of a table")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def print_report(report, out, as_json: bool) -> None:
    """An evaluation report (`eval_tasks`, `eval_instructions`): its results as JSON, or the table and files."""
    from lmlab.evaluation import format_curve, format_table, items_path

    if as_json:
        print(dumps(report.get("curve", report["results"]), ascii=True))
    else:
        print(format_curve(report) if "curve" in report else format_table(report))
        print(f"results: {out}  items: {items_path(out)}")


def cmd_tasks(args) -> int:
    """zero/one/few-shot evaluation on built-in or file-backed tasks

    Evaluate a run dir's model on tasks at one or more shot counts: prints a table (task x shots, metric ± bootstrap
    stderr), writes the results JSON and a per-item log (*.items.jsonl) beside it. See docs/evaluation.md.
    """
    from pathlib import Path

    from lmlab.evaluation import eval_tasks

    out = Path(args.out) if args.out else Path(args.run_dir) / "eval" / "results.json"
    report = eval_tasks(args.run_dir, args.tasks, shots=args.shots, limit=args.limit, batch_size=args.batch_size,
                        seed=args.seed, world=args.world, out=out, device=args.device, progress=args.progress,
                        weights=args.weights, checkpoints=args.checkpoints)
    print_report(report, out, args.json)
    return 0


def cmd_list(args) -> int:
    """list built-in tasks

    Built-in tasks with one line each; file tasks are given as NAME:PATH.
    """
    from lmlab.evaluation.builtin import format_task_list

    print(format_task_list())
    return 0


# ===================================================================================================== classify ===
def classify_arguments(e) -> None:
    add_run_dir(e, "classifier run dir (lmlab finetune)")
    e.add_argument("--data", required=True, metavar="FILE", help="labelled file (same formats as lmlab finetune)")
    e.add_argument("--batch-size", type=int, default=64, metavar="N", help="texts per forward pass (default 64)")
    add_json(e, "print the figures as JSON")
    add_device(e)


def cmd_classify(args) -> int:
    """accuracy of a classifier run dir on a labelled file

    Accuracy (and per-class accuracy) of a classifier run on labelled data.
    """
    from lmlab.evaluation.classification import accuracy, format_accuracy

    res = accuracy(args.run_dir, args.data, batch_size=args.batch_size, device=args.device)
    print(dumps(res, indent=None, ascii=True) if args.json else format_accuracy(res))
    return 0


# ================================================================================================== translation ===
def translation_arguments(t) -> None:
    add_run_dir(t, "run dir trained with --model seq2seq")
    t.add_argument("--data", default=None, metavar="FILE|PREFIX|DIR",
                   help="a parallel shard dir (its val split) or parallel text (default: the run's data dir)")
    t.add_argument("--split", default="val", help="split of a shard dir (default val)")
    t.add_argument("--reverse", action="store_true", default=None,
                   help="with parallel text: swap its columns/languages (default: as the run's data dir)")
    t.add_argument("--src-lang", default=None, help="with aligned files: source suffix (default: the run's)")
    t.add_argument("--tgt-lang", default=None, help="with aligned files: target suffix (default: the run's)")
    t.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N pairs")
    t.add_argument("--beam", type=int, default=1, metavar="B", help="beam search with B beams (default 1: greedy)")
    t.add_argument("--examples", type=int, default=3, metavar="K", help="example translations to print (default 3)")
    add_json(t, "print the figures as JSON")
    add_device(t)


def cmd_translation(args) -> int:
    """BLEU and chrF of an encoder-decoder run (sacrebleu)

    Translate held-out sentence pairs and score them with sacrebleu's corpus BLEU and chrF. Default data: the val
    split of the run's own training data.
    """
    from lmlab.evaluation.translation import eval_translation, format_translation_scores

    r = eval_translation(args.run_dir, args.data, split=args.split, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                         reverse=args.reverse, beam=args.beam, limit=args.limit, examples=args.examples,
                         device=args.device)
    print(dumps(r) if args.json else format_translation_scores(r))
    return 0


# ================================================================================================= instructions ===
def instructions_arguments(e) -> None:
    add_run_dir(e)
    e.add_argument("--data", required=True, nargs="+", metavar="FILE.jsonl", help="instruction file(s)")
    e.add_argument("--shots", default="0", help="shot counts, e.g. 0 or 0,5 (default 0)")
    e.add_argument("--prompt", default="auto", choices=["auto", "template", "plain"],
                   help="auto: the run's template if it has one, else plain (default)")
    e.add_argument("--limit", type=int, default=None, metavar="N", help="first N items of each type")
    e.add_argument("--batch-size", type=int, default=16, metavar="N", help="prompts per batch (default 16)")
    e.add_argument("--seed", type=int, default=1234, help="few-shot draws and bootstrap (default 1234)")
    e.add_argument("--out", default=None, metavar="FILE.json",
                   help="results JSON (default RUN_DIR/eval/instructions.json); items beside it")
    add_json(e, "print the results as JSON")
    add_device(e)
    e.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def cmd_instructions(args) -> int:
    """exact-match accuracy per instruction type (zero/few-shot)

    Greedy answers of a run to instruction JSONL files, scored by exact match per instruction type. A run with a
    prompt template (lmlab finetune --instructions) is asked with it, a base run with the plain prompt; --shots 5
    prepends five solved items of the same type (lmlab eval's few-shot prompts).
    """
    from pathlib import Path

    from lmlab.evaluation.instructions import eval_instructions

    out = Path(args.out) if args.out else Path(args.run_dir) / "eval" / "instructions.json"
    report = eval_instructions(args.run_dir, args.data, shots=args.shots, prompt=args.prompt, limit=args.limit,
                               batch_size=args.batch_size, seed=args.seed, out=out, device=args.device,
                               progress=args.progress)
    print_report(report, out, args.json)
    return 0
