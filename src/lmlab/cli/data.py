"""`lmlab world`, `lmlab tokenizer train|show` and `lmlab data prepare|stats|prepare-parallel`: text in, tokens
out."""

from __future__ import annotations

import sys

from lmlab.errors import LmlabError


# ======================================================================================================= world ===
def world_arguments(p) -> None:
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", default="5MB", help="approximate size of the training text, e.g. 500KB, 5MB, 1GB")
    # How facts.txt states the static facts (lmlab.world.WorldOptions); the defaults give the usual world.
    from lmlab.world.options import MAX_FORMS, ORDERS, WorldOptions
    default = WorldOptions()
    p.add_argument("--forms", type=int, default=default.forms, metavar="N",
                   help=f"distinct statement templates per fact, 1..{MAX_FORMS} (1 = each fact always written the "
                        f"same way, no augmentation; default {default.forms}, all)")
    p.add_argument("--order", default=default.order, metavar="|".join(ORDERS),
                   help=f"order of a subject's facts in each paragraph: {' or '.join(ORDERS)} (default "
                        f"{default.order}: a new random order each time)")
    p.add_argument("--statements", type=int, default=default.statements, metavar="N",
                   help=f"statements of each fact per paragraph about its subject, each in another form, 1..--forms "
                        f"(default {default.statements}; the text's size stays the same, so N>1 means fewer, longer "
                        f"paragraphs)")
    p.add_argument("--name-variants", action="store_true",
                   help="call each fact's subject by its name or a variant of it ('Kavelor Dransk', 'the Republic "
                        "of Vorland'), a random one per statement; questions and tasks keep the plain name")
    p.add_argument("--extraction", action="store_true",
                   help="write the extraction split: question forms ('Q: What is the capital of X? A:') in the text "
                        "for the exposed half of the subjects only, and task facts_extract asking them about the "
                        "held-out half")
    p.add_argument("--exposed-fraction", type=float, default=default.exposed_fraction, metavar="F",
                   help=f"with --extraction: share of each kind's subjects that are exposed (default "
                        f"{default.exposed_fraction})")


def cmd_world(args) -> int:
    """generate the built-in synthetic world corpus

    Generate the seeded synthetic world: training text, facts, edit requests, evaluation tasks. Same arguments →
    byte-identical output. --forms, --order, --statements, --name-variants and --extraction change how the
    training text states the facts (docs/world.md, "Options"); left out, the world is the usual one.
    """
    from lmlab.world import WorldOptions, format_world_summary, generate_world

    options = WorldOptions(forms=args.forms, order=args.order, extraction=args.extraction,
                           exposed_fraction=args.exposed_fraction, statements=args.statements,
                           name_variants=args.name_variants)
    print(format_world_summary(generate_world(args.out, seed=args.seed, size=args.size, options=options,
                                              progress=True)))
    return 0


# =================================================================================================== tokenizer ===
def tokenizer_train_arguments(t) -> None:
    t.add_argument("inputs", nargs="+", metavar="INPUT", help="text files or directories of .txt files")
    t.add_argument("--kind", required=True, choices=["char", "word", "bpe"], help="tokenizer kind")
    t.add_argument("--out", required=True, help="where to write the tokenizer JSON file")
    t.add_argument("--vocab-size", type=int, default=None,
                   help="total ids incl. special tokens (char/word default: all kept; bpe default 4096)")
    t.add_argument("--min-frequency", type=int, default=1, help="drop chars/words/merges seen fewer times (default 1)")
    t.add_argument("--numbers", choices=["gpt2", "groups3", "digits"], default="gpt2",
                   help="bpe digit policy: gpt2 (merged by frequency), groups3 (chunks of ≤3), digits (one each)")
    t.add_argument("--special", action="append", default=[], metavar="TOKEN",
                   help="extra special token, never split (repeat the flag for more), e.g. --special '<extract>'")
    t.add_argument("--no-byte-fallback", dest="byte_fallback", action="store_false",
                   help="char kind: unknown characters become <unk> instead of UTF-8 byte tokens")
    t.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_tokenizer_train(args) -> int:
    """train a tokenizer on text files

    Train a char, word or byte-level BPE tokenizer on UTF-8 text files (directories: their *.txt files, recursively)
    and save it as one JSON file.
    """
    from lmlab.tokenization import train_tokenizer_from_files

    tok = train_tokenizer_from_files(args.kind, args.inputs, vocab_size=args.vocab_size, numbers=args.numbers,
                                     min_frequency=args.min_frequency, special_tokens=args.special,
                                     byte_fallback=args.byte_fallback, progress=not args.quiet)
    tok.save(args.out)
    policy = f", numbers={tok.numbers}" if args.kind == "bpe" else ""
    print(f"trained {args.kind} tokenizer: vocab_size={tok.vocab_size}{policy}, "
          f"special={','.join(tok.special_tokens)}, fingerprint={tok.fingerprint} -> {args.out}")
    return 0


def tokenizer_show_arguments(s) -> None:
    s.add_argument("tokenizer", help="tokenizer JSON file")
    s.add_argument("text", nargs="?", default=None, help="text to split (quote it)")
    s.add_argument("--integers", type=int, default=None, metavar="N",
                   help="report how many distinct tokens write the integers 0..N")
    s.add_argument("--prefix", default="", help="with --integers: text before each integer, e.g. ' '")


def cmd_tokenizer_show(args) -> int:
    """show how a text splits into tokens

    Print each token of TEXT with its id and what it spells, then the count; --integers N reports how the tokenizer
    writes the integers 0..N.
    """
    from lmlab.tokenization import (format_integer_coverage, format_token_table, integer_coverage,
                                    load_tokenizer, token_table)

    if args.text is None and args.integers is None:
        raise LmlabError("give a TEXT to split, or --integers N (e.g. lmlab tokenizer show tok.json \"12345\")")
    tok = load_tokenizer(args.tokenizer)
    if args.text is not None:
        print(format_token_table(tok, token_table(tok, args.text)))
    if args.integers is not None:
        print(format_integer_coverage(integer_coverage(tok, args.integers, prefix=args.prefix)))
    return 0


# ======================================================================================================== data ===
def data_prepare_arguments(pr) -> None:
    pr.add_argument("inputs", nargs="+", metavar="INPUT", help="text files, directories (recursive) or .jsonl files")
    pr.add_argument("--tokenizer", required=True, metavar="FILE|char|word|bpe",
                    help="a tokenizer JSON file, or a kind to train on the train split")
    pr.add_argument("--out", required=True, metavar="DATA_DIR", help="output data directory")
    pr.add_argument("--val-fraction", type=float, default=0.1,
                    help="share of documents for validation (default 0.1); with fewer than 1/fraction documents "
                         "(e.g. one file), that share of the text's end instead")
    pr.add_argument("--val", nargs="+", metavar="FILE", default=None,
                    help="your own validation text (files/dirs): the val split, instead of holding out a share")
    pr.add_argument("--dedup", choices=("exact", "near", "none"), default="exact",
                    help="duplicate removal: exact (default), near (exact + MinHash), none")
    pr.add_argument("--near-threshold", type=float, default=0.8,
                    help="Jaccard similarity above which --dedup near drops a document (default 0.8)")
    pr.add_argument("--vocab-size", type=int, default=None, help="vocabulary size when training a tokenizer")
    pr.add_argument("--numbers", choices=("gpt2", "groups3", "digits"), default="gpt2",
                    help="BPE digit policy when training a BPE tokenizer (default gpt2)")
    pr.add_argument("--special", action="append", default=[], metavar="TOKEN",
                    help="extra special token for a tokenizer trained here (repeat the flag), e.g. --special '<sep>'")
    pr.add_argument("--include", nargs="+", action="extend", default=None, metavar="GLOB",
                    help="only files matching these globs inside directories, e.g. '*.txt' '*.md'")
    pr.add_argument("--text-field", default="text", help="JSONL field holding the text (default 'text')")
    pr.add_argument("--split-blank-lines", action="store_true",
                    help="each blank-line-separated block of a text file is a document (default: the whole file)")
    pr.add_argument("--errors", choices=("strict", "replace"), default="strict",
                    help="bytes that are not UTF-8: stop with an error (strict, default) or replace with U+FFFD")
    pr.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    pr.add_argument("--workers", type=int, default=None, help="tokenizing processes (default: all cores)")
    pr.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_data_prepare(args) -> int:
    """read, dedup, split and tokenize a corpus into shards

    Read files / directories / .jsonl, remove duplicates, split by document into train/val, tokenize in parallel and
    write DATA_DIR/{train,val}.bin, tokenizer.json and manifest.json (replacing DATA_DIR atomically).
    """
    import time
    import warnings

    from lmlab.data import format_prepare_report, prepare

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = prepare(args.inputs, args.tokenizer, args.out, val_fraction=args.val_fraction, dedup=args.dedup,
                    seed=args.seed, include=args.include, text_field=args.text_field,
                    split_blank_lines=args.split_blank_lines, errors=args.errors, vocab_size=args.vocab_size,
                    numbers=args.numbers, workers=args.workers, near_threshold=args.near_threshold,
                    special_tokens=args.special, val_inputs=args.val,
                    progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    for w in caught:
        print(f"lmlab: warning: {w.message}", file=sys.stderr)
    print(format_prepare_report(m, args.out, seconds))
    return 0


def data_stats_arguments(st) -> None:
    st.add_argument("data_dir", metavar="DATA_DIR")
    st.add_argument("--top", type=int, default=10, help="show the N most frequent train tokens (0: none)")
    st.add_argument("--json", action="store_true", help="print the summary as JSON")
    st.add_argument("--tokenizer", default=None, metavar="FILE",
                    help="also check that the shards were made with this tokenizer file")


def cmd_data_stats(args) -> int:
    """summarise a shard directory"""
    from lmlab.cli.options import dumps
    from lmlab.data import data_stats, format_data_stats

    st = data_stats(args.data_dir, top=args.top, tokenizer=args.tokenizer)
    print(dumps(st) if args.json else format_data_stats(st))
    return 0


def prepare_parallel_arguments(pp) -> None:
    pp.add_argument("inputs", nargs="+", metavar="FILE|PREFIX|DIR", help="parallel text")
    pp.add_argument("--out", required=True, metavar="DATA_DIR", help="output data directory")
    pp.add_argument("--src-lang", default="en", help="source language suffix of aligned files (default en)")
    pp.add_argument("--tgt-lang", default="fr", help="target language suffix of aligned files (default fr)")
    pp.add_argument("--reverse", action="store_true", help="swap source and target (e.g. translate fr → en)")
    pp.add_argument("--tokenizer", default="bpe", metavar="FILE|char|word|bpe",
                    help="tokenizer kind to train on the train split (default bpe), or a tokenizer file")
    pp.add_argument("--vocab-size", type=int, default=None, help="vocabulary size of a tokenizer trained here")
    pp.add_argument("--val-fraction", type=float, default=0.1,
                    help="share of pairs held out when the input has no official val files (default 0.1)")
    pp.add_argument("--seed", type=int, default=0, help="seed of the train/val split (default 0)")
    pp.add_argument("--no-dedup", dest="dedup", action="store_false", help="keep repeated identical pairs")
    pp.add_argument("--no-progress", action="store_true", help="no progress bars")


def cmd_data_prepare_parallel(args) -> int:
    """sentence pairs → shards of 'source<sep>target' documents

    Read parallel text (a TAB-separated file such as Tatoeba's, PREFIX for PREFIX.<src> + PREFIX.<tgt> aligned
    files, or a directory of them such as Multi30k) and write a shard directory for `lmlab train --model seq2seq`,
    with a tokenizer trained on both languages (see docs/models-seq2seq.md).
    """
    from lmlab.data.parallel import prepare_parallel
    from lmlab.data.reports import format_parallel_report
    from lmlab.models.seq2seq import Seq2Seq

    m = prepare_parallel(args.inputs, args.out, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                         reverse=args.reverse, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                         special_tokens=Seq2Seq.special_tokens, val_fraction=args.val_fraction, seed=args.seed,
                         dedup=args.dedup, progress=not args.no_progress)
    print(format_parallel_report(m, args.out))
    return 0
