"""`lmlab embed neighbors|analogy`, `lmlab finetune`, `lmlab classify` and `lmlab instruction-set`: word vectors,
classifiers and instruction tuning."""

from __future__ import annotations

from lmlab.cli.options import add_device, add_json, add_run_dir, dumps
from lmlab.errors import LmlabError


# ======================================================================================================= embed ===
def neighbors_arguments(n) -> None:
    add_run_dir(n, "run dir trained with --model cooc, ppmi or word2vec")
    n.add_argument("word", metavar="WORD", help="the query word (as the word tokenizer writes it; case matters)")
    n.add_argument("--k", type=int, default=10, help="how many neighbours (default 10)")
    add_json(n, "print JSON [[word, cosine], ...]")


def analogy_arguments(a) -> None:
    add_run_dir(a, "run dir trained with --model cooc, ppmi or word2vec")
    # Three positionals, not one with nargs=3 and a tuple metavar: argparse cannot print --help for the latter.
    a.add_argument("a", metavar="A", help="a is to b as c is to ?")
    a.add_argument("b", metavar="B", help="the word a relates to")
    a.add_argument("c", metavar="C", help="the word whose counterpart is asked for")
    a.add_argument("--k", type=int, default=5, help="how many answers (default 5)")
    add_json(a, "print JSON [[word, cosine], ...]")


def check_k(k: int) -> None:
    if k < 1:
        raise LmlabError(f"--k must be ≥ 1 (got {k})")


def print_scored_words(rows: list[tuple[str, float]], as_json: bool) -> None:
    if as_json:
        print(dumps([[w, round(s, 6)] for w, s in rows], indent=None, ascii=True))
        return
    for w, s in rows:
        print(f"{s:+.4f}  {w}")


def cmd_embed_neighbors(args) -> int:
    """the words nearest to a word (cosine similarity)"""
    from lmlab.evaluation.embeddings import neighbors

    check_k(args.k)
    print_scored_words(neighbors(args.run_dir, args.word, k=args.k), args.json)
    return 0


def cmd_embed_analogy(args) -> int:
    """a : b :: c : ? by 3CosAdd (b - a + c, inputs excluded)"""
    from lmlab.evaluation.embeddings import analogy

    check_k(args.k)
    print_scored_words(analogy(args.run_dir, args.a, args.b, args.c, k=args.k), args.json)
    return 0


# ==================================================================================================== finetune ===
FINETUNE_USAGE = ("lmlab finetune [RUN_DIR] --model gpt|bert|bow|lstm --data FILE --out NEW_RUN_DIR [options] "
                  "[--key value ...]\n       lmlab finetune RUN_DIR --instructions FILE.jsonl --out NEW_RUN_DIR "
                  "[--replay SHARE] [--key value ...]")


def finetune_arguments(f) -> None:
    f.add_argument("--model", dest="clf_model", default="gpt", metavar="gpt|bert|bow|lstm",
                   help="classifier kind (default gpt)")
    f.add_argument("--task", default="sentiment", metavar="sentiment|labels",
                   help="sentiment: classes negative/positive (0/1); labels: the classes the file names")
    f.add_argument("--data", default=None, metavar="FILE", help="labelled training data")
    f.add_argument("--val-data", default=None, metavar="FILE",
                   help="labelled (or, with --instructions, instruction) validation data (default: 10%% of the "
                        "training file)")
    f.add_argument("--out", required=True, metavar="NEW_RUN_DIR", help="run dir to write")
    f.add_argument("--tokenizer", default="word", metavar="word|bpe|char|FILE",
                   help="tokenizer of a fresh bow/lstm model, trained on --data (default word)")
    f.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")
    f.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar or status lines")
    f.add_argument("--instructions", default=None, metavar="FILE.jsonl",
                   help="instruction-tune the GPT of RUN_DIR on {instruction, input?, response} lines")
    f.add_argument("--replay", type=float, default=0.0, metavar="SHARE",
                   help="with --instructions: share of training documents taken from pre-training text, in [0, 1) "
                        "(default 0)")
    f.add_argument("--replay-data", default=None, metavar="DATA_DIR",
                   help="shards to replay (default: the shards RUN_DIR was trained on)")
    f.add_argument("--resume", action="store_true",
                   help="continue the instruction tuning in --out (e.g. with a larger --max_iters)")


def cmd_finetune(args) -> int:
    """train a text classifier, or instruction-tune a GPT run (--instructions)

    Train a classifier on a labelled file (SST-2 TSV, UCI labelled sentences, JSONL {text,label}, or a world dir's
    reviews) into a new run dir; RUN_DIR (--model gpt|bert) is only read. Model and training settings as --key value
    (e.g. --max_iters 300 --lm_coef 0.5). See docs/classification.md. With --instructions, supervised fine-tuning of
    a GPT run on instruction → response examples (docs/instruction-tuning.md).
    """
    from lmlab.training.config import parse_override_args
    from lmlab.recipes import finetune

    # RUN_DIR is read here, not by argparse: an optional positional would swallow the value of a --key value
    # setting that argparse does not know (e.g. the 50 of --max_iters 50).
    words: list[str] = []
    overrides = parse_override_args(args.overrides, words=words)
    if len(words) > 1:
        raise LmlabError(f"one RUN_DIR at most, got {' '.join(words)} (settings are written --key value)")
    result = finetune(args.out, run_dir=words[0] if words else None, model=args.clf_model, task=args.task,
                      data=args.data, val_data=args.val_data, tokenizer=args.tokenizer, overrides=overrides,
                      overwrite=args.overwrite, progress=args.progress, instructions=args.instructions,
                      replay=args.replay, replay_data=args.replay_data, resume=args.resume)
    line = f"trained {result.step} steps into {result.run_dir} ({result.wall_seconds:.0f} s)"
    if result.last_val_loss is not None:
        line += f"; val loss {result.last_val_loss:.4f} (best {result.best_val_loss:.4f})"
    if args.instructions or args.resume:
        print(line + f"; try: lmlab sample {result.run_dir} --instruction TEXT --temperature 0")
    else:
        print(line + f"; accuracy: lmlab eval classify {result.run_dir} --data FILE")
    return 0


# ==================================================================================================== classify ===
def classify_arguments(c) -> None:
    add_run_dir(c, "classifier run dir (lmlab finetune)")
    c.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify")
    add_json(c, "print JSON [[label, probability], ...]")
    add_device(c)


def cmd_classify(args) -> int:
    """label texts with a classifier run dir

    Print the most probable label and its probability for each text.
    """
    from lmlab.evaluation.classification import predict

    rows = predict(args.run_dir, args.texts, device=args.device)
    if args.json:
        print(dumps([[label, round(p, 6)] for label, p in rows], indent=None, ascii=True))
    else:
        for text, (label, p) in zip(args.texts, rows):
            print(f"{label}\t{p:.4f}\t{text}")
    return 0


# ============================================================================================= instruction-set ===
def instruction_set_arguments(p) -> None:
    p.add_argument("world_dir", metavar="WORLD_DIR", help="world directory (lmlab world --out DIR)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (new, empty, or an instruction set)")
    p.add_argument("--heldout-type", default="current_value", metavar="TYPE",
                   help="instruction type kept out of train.jsonl (default current_value; also fact_question, "
                        "arithmetic, unscramble, reverse, sentiment)")
    p.add_argument("--seed", type=int, default=0, help="seed of the item splits and draws (default 0)")


def cmd_instruction_set(args) -> int:
    """write a world's instruction set (JSONL) for instruction tuning

    Read a world directory (only read) and write instruction → response examples about it: train.jsonl for tuning,
    heldout_phrasings.jsonl, seen_phrasings.jsonl and heldout_type.jsonl for evaluation, info.json. Same bytes for
    the same arguments. See docs/instruction-tuning.md.
    """
    from lmlab.world import instruction_set

    summary = instruction_set(args.world_dir, args.out, heldout_type=args.heldout_type, seed=args.seed)
    for stem, counts in summary["counts"].items():
        print(f"{args.out}/{stem}.jsonl: {sum(counts.values())} examples "
              f"({', '.join(f'{k} {v}' for k, v in counts.items())})")
    return 0
