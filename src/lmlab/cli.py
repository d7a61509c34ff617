"""Command-line tool: argument parsing and printing only.

Every verb is a thin wrapper over a public Python function with the same name and arguments (see
ARCHITECTURE.md), so a notebook can do whatever the CLI does. Heavy imports (torch, tokenizers) happen inside the
handlers so `lmlab --help` stays instant. User mistakes raise `LmlabError`, printed here on one line with exit 2.

Layout of this file: one section per verb group, each with `add_<group>_parser(sub)` and `cmd_<group>_<verb>(args)`.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from lmlab import __version__
from lmlab.errors import LmlabError


# ======================================================================================================= world ===
def add_world_parser(sub) -> None:
    p = sub.add_parser("world", help="generate the built-in synthetic world corpus",
                       description="Generate the seeded synthetic world: training text, facts, edit requests, "
                                   "evaluation tasks. Same arguments → byte-identical output.")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", default="5MB", help="approximate size of the training text, e.g. 500KB, 5MB, 1GB")
    p.set_defaults(func=cmd_world)


def cmd_world(args) -> int:
    from lmlab.utils import human_bytes
    from lmlab.world import generate_world

    s = generate_world(args.out, seed=args.seed, size=args.size, progress=True)
    c, m = s["counts"], s["mentions"]
    print(f"world: {s['out_dir']} (seed {s['seed']}, {human_bytes(s['corpus_bytes'])} of training text)")
    print("  entities: " + ", ".join(f"{n} {kind}" for kind, n in c["entities"].items()))
    print(f"  facts: {c['static_facts']} static (each mentioned ≥{m['static_min']} times, mean {m['static_mean']}), "
          f"{c['temporal_facts']} temporal (outdated ×{m['outdated_mean']}, current ×{m['current_mean']} on average)")
    print(f"  edits: {c['edits']} requests; tasks: {len(c['task_items'])} files, "
          f"{sum(c['task_items'].values())} items")
    print("  corpus: " + ", ".join(f"{name} {human_bytes(n)}" for name, n in s["sections"].items()))
    print(f"  files: {len(s['files']) + 1} written (see {s['out_dir']}/world.json)")
    return 0


# =================================================================================================== tokenizer ===
def add_tokenizer_parser(sub) -> None:
    p = sub.add_parser("tokenizer", help="train and inspect tokenizers")
    tsub = p.add_subparsers(dest="tokenizer_cmd", required=True, metavar="{train,show}")
    t = tsub.add_parser("train", help="train a tokenizer on text files",
                        description="Train a char, word or byte-level BPE tokenizer on UTF-8 text files "
                                    "(directories: their *.txt files, recursively) and save it as one JSON file.")
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
    t.set_defaults(func=cmd_tokenizer_train)
    s = tsub.add_parser("show", help="show how a text splits into tokens",
                        description="Print each token of TEXT with its id and what it spells, then the count; "
                                    "--integers N reports how the tokenizer writes the integers 0..N.")
    s.add_argument("tokenizer", help="tokenizer JSON file")
    s.add_argument("text", nargs="?", default=None, help="text to split (quote it)")
    s.add_argument("--integers", type=int, default=None, metavar="N",
                   help="report how many distinct tokens write the integers 0..N")
    s.add_argument("--prefix", default="", help="with --integers: text before each integer, e.g. ' '")
    s.set_defaults(func=cmd_tokenizer_show)


def cmd_tokenizer_train(args) -> int:
    from lmlab.tokenization import train_tokenizer_from_files

    tok = train_tokenizer_from_files(args.kind, args.inputs, vocab_size=args.vocab_size, numbers=args.numbers,
                                     min_frequency=args.min_frequency, special_tokens=args.special,
                                     byte_fallback=args.byte_fallback, progress=not args.quiet)
    tok.save(args.out)
    policy = f", numbers={tok.numbers}" if args.kind == "bpe" else ""
    print(f"trained {args.kind} tokenizer: vocab_size={tok.vocab_size}{policy}, "
          f"special={','.join(tok.special_tokens)}, fingerprint={tok.fingerprint} -> {args.out}")
    return 0


def cmd_tokenizer_show(args) -> int:
    from lmlab.tokenization import integer_coverage, load_tokenizer, token_table

    if args.text is None and args.integers is None:
        raise LmlabError("give a TEXT to split, or --integers N (e.g. lmlab tokenizer show tok.json \"12345\")")
    tok = load_tokenizer(args.tokenizer)
    if args.text is not None:
        rows = token_table(tok, args.text)
        width = max([len(repr(r["token"])) for r in rows] + [5])
        print(f"{'id':>7}  {'token':<{width}}  text")
        for r in rows:
            print(f"{r['id']:>7}  {r['token']!r:<{width}}  {r['text']!r}")
        print(f"{len(rows)} tokens ({tok.kind} tokenizer, vocab_size={tok.vocab_size})")
    if args.integers is not None:
        c = integer_coverage(tok, args.integers, prefix=args.prefix)
        print(f"integers 0..{c['n']} (written as {args.prefix!r} + digits): {c['distinct_tokens']} distinct tokens; "
              f"{c['single_token_integers']} of {c['integers']} are one token; tokens per integer: "
              f"mean {c['mean_tokens']:.2f}, max {c['max_tokens']} (first at {c['max_tokens_example']})")
    return 0


# ======================================================================================================== data ===
def add_data_parser(sub) -> None:
    p = sub.add_parser("data", help="turn text into token shards")
    dsub = p.add_subparsers(dest="data_cmd", required=True, metavar="{prepare,prepare-parallel,stats}")
    pr = dsub.add_parser("prepare", help="read, dedup, split and tokenize a corpus into shards",
                         description="Read files / directories / .jsonl, remove duplicates, split by document into "
                                     "train/val, tokenize in parallel and write DATA_DIR/{train,val}.bin, "
                                     "tokenizer.json and manifest.json (replacing DATA_DIR atomically).")
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
    pr.set_defaults(func=cmd_data_prepare)
    st = dsub.add_parser("stats", help="summarise a shard directory")
    st.add_argument("data_dir", metavar="DATA_DIR")
    st.add_argument("--top", type=int, default=10, help="show the N most frequent train tokens (0: none)")
    st.add_argument("--json", action="store_true", help="print the summary as JSON")
    st.add_argument("--tokenizer", default=None, metavar="FILE",
                    help="also check that the shards were made with this tokenizer file")
    st.set_defaults(func=cmd_data_stats)
    add_data_prepare_parallel_parser(dsub)


def cmd_data_prepare(args) -> int:
    import time
    import warnings

    from lmlab.data import prepare
    from lmlab.utils import human_bytes

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
    d, tok = m["dedup"], m["tokenizer"]
    src_bytes = sum(s["bytes"] for s in m["sources"])
    print(f"read {m['documents_read']} documents from {len(m['sources'])} file(s) ({human_bytes(src_bytes)})")
    print(f"duplicates removed: {d['exact_duplicates_removed']} exact, {d['near_duplicates_removed']} near "
          f"(--dedup {d['mode']})")
    print(f"tokenizer: {tok['kind']}, vocab {tok['vocab_size']}, fingerprint {tok['fingerprint']}; dtype {m['dtype']}")
    for name, s in m["splits"].items():
        print(f"{name:5s}: {s['documents']} documents, {s['tokens']} tokens, {human_bytes(s['text_bytes'])} of text")
    print(f"wrote {args.out} in {seconds:.1f} s ({human_bytes(src_bytes / max(seconds, 1e-9))}/s)")
    return 0


def cmd_data_stats(args) -> int:
    import json

    from lmlab.data import data_stats
    from lmlab.utils import human_bytes

    st = data_stats(args.data_dir, top=args.top, tokenizer=args.tokenizer)
    if args.json:
        print(json.dumps(st, indent=2, ensure_ascii=False))
        return 0
    tok = st["tokenizer"]
    print(f"{st['data_dir']}: tokenizer {tok['kind']} (vocab {tok['vocab_size']}, fingerprint {tok['fingerprint']}), "
          f"dtype {st['dtype']}")
    for name, s in st["splits"].items():
        tpb = f"{s['tokens_per_byte']:.3f}" if s["tokens_per_byte"] is not None else "-"
        print(f"{name:5s}: {s['tokens']} tokens, {s['documents']} documents, {human_bytes(s['text_bytes'])} of text, "
              f"{tpb} tokens/byte")
    if st.get("dedup"):
        d = st["dedup"]
        print(f"dedup {d['mode']}: {d['exact_duplicates_removed']} exact, {d['near_duplicates_removed']} near "
              f"removed of {st['documents_read']} documents read")
    if st.get("top_tokens"):
        print("top train tokens: " + ", ".join(f"{t!r} {n}" for t, n in st["top_tokens"]))
    return 0


# ======================================================================================================= train ===
def add_train_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model (no arguments: the recipe `world`, the tiny GPT on the built-in world)",
        description="Train a model into a run dir. Any model or training setting can be given as --key value "
                    "(e.g. --lr 3e-4 --n_layer 2 --max_iters 500); precedence: preset < recipe < --config FILE < "
                    "--key value. With no data option at all, runs the recipe `world` (the main job): builds the "
                    "default world corpus, trains the tiny GPT on it and prints val perplexity and sample "
                    "completions; --recipe NAME runs another (lmlab recipes lists them). With --data/--text, the "
                    "preset is trained with the settings of the recipe that owns it. Python: lmlab.recipes.run.",
        epilog="Distributed: torchrun --nproc_per_node N -m lmlab train --data DIR --out RUN ... "
               "(see docs/training.md)")
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


def cmd_train(args) -> int:
    from lmlab.recipes import format_result, run
    from lmlab.training.distributed import launch_rank

    result = run(args.recipe, out=args.out, overrides=args.overrides, config_file=args.config, data_dir=args.data,
                 text=args.text, val_text=args.val, tokenizer=args.tokenizer, model_type=args.model_type,
                 preset=args.preset, resume=args.resume, overwrite=args.overwrite, init=args.init,
                 replay=args.replay, replay_data=args.replay_data, progress=args.progress)
    if launch_rank() == 0:  # torchrun's other ranks train but print nothing
        print(format_result(result))
    return 0


def add_recipes_parser(sub) -> None:
    p = sub.add_parser("recipes", help="list the named recipes `lmlab train --recipe NAME` runs",
                       description="The named end-to-end jobs (world text → tokenizer → shards → model → training → "
                                   "report), with the minutes each takes on a 2-core CPU and what it writes. "
                                   "Python: lmlab.recipes.RECIPES, lmlab.recipes.format_recipes. See docs/recipes.md.")
    p.add_argument("--json", action="store_true", help="print every recipe's full settings as JSON")
    p.set_defaults(func=cmd_recipes)


def cmd_recipes(args) -> int:
    import dataclasses
    import json

    from lmlab.recipes import RECIPES, format_recipes

    if args.json:
        print(json.dumps({n: dataclasses.asdict(r) for n, r in RECIPES.items()}, indent=2))
    else:
        print(format_recipes())
    return 0


# ================================================================================== generation: sample / score ===
def add_generation_parsers(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a run dir",
                       description="Continue a prompt with a trained model (see docs/generation.md). "
                                   "--temperature 0 is greedy; --beam B runs beam search.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run dir (from `lmlab train` or `lmlab import hf-gpt2`)")
    p.add_argument("--prompt", action="append", default=None, metavar="TEXT",
                   help="prompt text; repeat for several prompts (decoded together as one batch)")
    add_instruction_sample_options(p)
    p.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="tokens to generate (default 64)")
    p.add_argument("--temperature", type=float, default=1.0, metavar="T", help="0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, default=None, metavar="K", help="sample among the K likeliest tokens")
    p.add_argument("--top-p", type=float, default=None, metavar="P", help="nucleus sampling: smallest set of mass ≥ P")
    p.add_argument("--beam", type=int, default=1, metavar="B", help="beam search with B beams (default 1: off)")
    p.add_argument("--length-penalty", type=float, default=1.0, metavar="A",
                   help="beam score = sum log-prob / len**A (default 1.0)")
    p.add_argument("--stop", nargs="+", default=None, metavar="S", help="stop when one of these strings appears")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed for reproducible sampling")
    p.add_argument("--truncate", choices=["left"], default=None,
                   help="drop the prompt's start when prompt + new tokens exceed the context")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_weights_argument(p)
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print JSON: completion, tokens and per-token log-probs")
    out.add_argument("--stream", action="store_true", help="print text as it is generated (one prompt)")
    p.set_defaults(func=cmd_sample)

    s = sub.add_parser("score", help="log-probabilities of a text under a run dir's model",
                       description="log P(text) in nats: the first token is conditioned on <eos> (start of a "
                                   "document) and P(<eos> | text) ends it unless --no-eos.")
    s.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    s.add_argument("--text", required=True, help="text to score")
    s.add_argument("--no-eos", action="store_true", help="do not include P(<eos> | text) (score a prefix)")
    s.add_argument("--json", action="store_true", help="print JSON with per-token log-probs")
    s.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_weights_argument(s)
    s.set_defaults(func=cmd_score)


def cmd_sample(args) -> int:
    import json

    from lmlab.checkpoint import load_run
    from lmlab.generation import generate, set_weight_storage, stream

    run = load_run(args.run_dir, device=args.device)
    set_weight_storage(run.model, args.weights)
    if args.instruction is not None:
        return sample_instruction(run, args)
    if not args.prompt:
        raise LmlabError("give --prompt TEXT (or, for an instruction-tuned run, --instruction TEXT)")
    options = sample_options(args)
    if args.stream:
        if len(args.prompt) != 1:
            raise LmlabError("--stream takes exactly one --prompt")
        print(args.prompt[0], end="", flush=True)
        for piece in stream(run.model, run.tokenizer, args.prompt[0], **options):
            print(piece, end="", flush=True)
        print()
        return 0
    completions = generate(run.model, run.tokenizer, args.prompt, return_logprobs=args.json, **options)
    if args.json:
        rows = []
        for c in completions:
            d = c.to_dict()
            d["token_strings"] = [run.tokenizer.decode([t]) for t in c.tokens]
            rows.append(d)
        print(json.dumps(rows[0] if len(rows) == 1 else rows, ensure_ascii=False, indent=2))
        return 0
    for i, c in enumerate(completions):
        if i:
            print("-" * 40)
        print(c.prompt + c.text)
    return 0


def cmd_score(args) -> int:
    import json
    import math

    from lmlab.checkpoint import load_run
    from lmlab.generation import score_text, set_weight_storage

    run = load_run(args.run_dir, device=args.device)
    set_weight_storage(run.model, args.weights)
    result = score_text(run.model, run.tokenizer, args.text, add_eos=not args.no_eos)
    if args.json:
        print(json.dumps(result.to_dict(run.tokenizer), ensure_ascii=False, indent=2))
        return 0
    for tok, lp in zip(result.tokens, result.token_logprobs):
        print(f"{lp:10.4f}  {run.tokenizer.decode([tok])!r}")
    n = max(result.n_tokens, 1)
    print(f"total log-prob {result.total_logprob:.4f} nats over {result.n_tokens} tokens "
          f"(mean {result.total_logprob / n:.4f}, perplexity {math.exp(-result.total_logprob / n):.3f})")
    return 0


# ======================================================================================================== eval ===
def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model")
    esub = p.add_subparsers(dest="eval_cmd", required=True, metavar="{ppl,tasks,list,classify,translation,instructions}")
    add_eval_task_parsers(esub)
    add_eval_classify_parser(esub)
    add_eval_translation_parser(esub)
    add_eval_instructions_parser(esub)
    pp = esub.add_parser("ppl", help="perplexity and bits-per-byte on shards or a text file",
                         description="Perplexity, bits per token and bits per byte of a run's model on a split of a "
                                     "shard directory (`lmlab data prepare`) or on a UTF-8 text file.")
    pp.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    pp.add_argument("--data", default=None, metavar="DIR|FILE",
                    help="shard directory or text file (default: the data dir recorded by training)")
    pp.add_argument("--split", default="val", help="split of a shard directory (default val)")
    pp.add_argument("--batch-size", type=int, default=8, metavar="N", help="windows per forward pass (default 8)")
    pp.add_argument("--stride", type=int, default=None, metavar="S",
                    help="window step in tokens (default block_size: non-overlapping windows)")
    pp.add_argument("--json", action="store_true", help="print the figures as JSON")
    pp.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_weights_argument(pp)
    pp.add_argument("--knn", default=None, metavar="DATASTORE", help="also interpolate with a kNN-LM datastore")
    pp.add_argument("--infgram", default=None, metavar="DATA_DIR", help="also interpolate with the ∞-gram of an "
                                                                        "indexed shard dir")
    pp.add_argument("--lambda", dest="lam", type=float, default=0.25, help="interpolation weight (default 0.25)")
    pp.add_argument("--k", type=int, default=64, help="kNN neighbours (default 64)")
    pp.add_argument("--knn-temperature", type=float, default=1.0, help="kNN softmax temperature (default 1)")
    pp.add_argument("--max-tokens", type=int, default=None, metavar="N", help="with --knn/--infgram: first N tokens")
    pp.set_defaults(func=cmd_eval_ppl)


def cmd_eval_ppl(args) -> int:
    import json
    from pathlib import Path

    from lmlab.checkpoint import load_run
    from lmlab.data import load_manifest, load_split
    from lmlab.generation import perplexity, set_weight_storage, text_perplexity

    if args.knn or args.infgram:
        if args.weights != "fp32":
            raise LmlabError("--weights bf16|int8 applies to plain perplexity; --knn/--infgram interpolation runs "
                             "the model in fp32 (leave out --weights)")
        return cmd_eval_ppl_memory(args)
    run = load_run(args.run_dir, device=args.device)
    set_weight_storage(run.model, args.weights)
    data = args.data or (run.training_config or {}).get("data_dir")
    if not data:
        raise LmlabError(f"{args.run_dir} records no training data dir; pass --data DIR|FILE")
    data = Path(data)
    if args.batch_size < 1:
        raise LmlabError("--batch-size must be at least 1")
    if data.is_dir():
        tokens = load_split(data, args.split, tokenizer=run.tokenizer)  # checks the tokenizer fingerprint
        text_bytes = load_manifest(data)["splits"][args.split].get("text_bytes")
        result = perplexity(run.model, tokens, batch_size=args.batch_size, stride=args.stride,
                            text_bytes=text_bytes, progress=True)
        where = f"{args.split} split of {data}"
    elif data.is_file():
        try:
            text = data.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LmlabError(f"{data} is not UTF-8 text") from None
        result = text_perplexity(run.model, run.tokenizer, text, batch_size=args.batch_size, stride=args.stride,
                                 progress=True)
        where = str(data)
    else:
        raise LmlabError(f"--data {data} is neither a shard directory nor a text file")
    if args.json:
        print(json.dumps({**result, "data": where}, indent=2))
        return 0
    bpb = f" | {result['bits_per_byte']:.4f} bits/byte" if "bits_per_byte" in result else ""
    print(f"{where}: loss {result['loss_nats']:.4f} nats/token | ppl {result['ppl']:.3f} | "
          f"{result['bits_per_token']:.4f} bits/token{bpb} | {result['n_tokens']} tokens")
    return 0


# ============================================================================================ hub: import/export ===
def add_hub_parsers(sub) -> None:
    i = sub.add_parser("import", help="import a model from another library's files (local only)")
    isub = i.add_subparsers(dest="import_cmd", required=True, metavar="{hf-gpt2}")
    ih = isub.add_parser("hf-gpt2", help="Hugging Face GPT-2 directory → run dir",
                         description="Convert a local Hugging Face GPT-2 directory (config.json, model.safetensors "
                                     "or pytorch_model.bin, vocab.json, merges.txt) into a run dir.")
    ih.add_argument("hf_dir", metavar="HF_DIR", help="Hugging Face GPT-2 directory")
    ih.add_argument("--out", required=True, metavar="RUN_DIR", help="run dir to write")
    ih.set_defaults(func=cmd_import_hf_gpt2)
    e = sub.add_parser("export", help="export a run dir to another library's format")
    esub = e.add_subparsers(dest="export_cmd", required=True, metavar="{hf,hf-gpt2}")
    ea = esub.add_parser("hf", help="GPT run dir → Hugging Face model dir (GPT-2 or GPT-NeoX) + tokenizer",
                         description="Write a GPT run dir as a directory that transformers' AutoModelForCausalLM "
                                     "and AutoTokenizer load (same logits, same token ids): learned or sinusoidal "
                                     "positions as GPT-2, rotary (full or partial) as GPT-NeoX; BPE and char "
                                     "tokenizers as tokenizer.json. Runs that cannot map (post-LN, word "
                                     "tokenizer, non-GPT models) are refused with the reason.")
    ea.add_argument("run_dir", metavar="RUN_DIR", help="run dir of a GPT")
    ea.add_argument("--out", required=True, metavar="HF_DIR", help="directory to write")
    ea.add_argument("--architecture", default="auto", choices=("auto", "gpt2", "gpt-neox"),
                    help="Hugging Face architecture (default auto: GPT-NeoX for rotary positions, else GPT-2)")
    ea.set_defaults(func=cmd_export_hf)
    eh = esub.add_parser("hf-gpt2", help="run dir → Hugging Face GPT-2 directory (`export hf` restricted to GPT-2)",
                         description="Write a run dir as a directory that transformers' GPT2LMHeadModel (and "
                                     "AutoModelForCausalLM / AutoTokenizer) load; runs with rotary positions are "
                                     "refused (use `lmlab export hf`, which writes them as GPT-NeoX).")
    eh.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    eh.add_argument("--out", required=True, metavar="HF_DIR", help="directory to write")
    eh.set_defaults(func=cmd_export_hf_gpt2)


def cmd_import_hf_gpt2(args) -> int:
    from lmlab.hub import import_hf_gpt2

    out = import_hf_gpt2(args.hf_dir, args.out)
    print(f"imported {args.hf_dir} → {out}")
    return 0


def cmd_export_hf(args) -> int:
    from lmlab.hub import export_hf

    out = export_hf(args.run_dir, args.out, architecture=args.architecture)
    print(f"exported {args.run_dir} → {out} (AutoModelForCausalLM.from_pretrained and AutoTokenizer load it)")
    return 0


def cmd_export_hf_gpt2(args) -> int:
    from lmlab.hub import export_hf_gpt2

    out = export_hf_gpt2(args.run_dir, args.out)
    print(f"exported {args.run_dir} → {out}")
    return 0


# ========================================================================== evaluation: eval tasks / eval list ===
def add_eval_task_parsers(esub) -> None:
    """`lmlab eval tasks` and `lmlab eval list` (the evaluation harness); called from add_eval_parser."""
    t = esub.add_parser("tasks", help="zero/one/few-shot evaluation on built-in or file-backed tasks",
                        description="Evaluate a run dir's model on tasks at one or more shot counts: prints a table "
                                    "(task x shots, metric ± bootstrap stderr), writes the results JSON and a "
                                    "per-item log (*.items.jsonl) beside it. See docs/evaluation.md.")
    t.add_argument("run_dir", metavar="RUN_DIR", help="run dir (lmlab train, or lmlab import hf-gpt2)")
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
    t.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_weights_argument(t)
    t.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    t.set_defaults(func=cmd_eval_tasks)
    ls = esub.add_parser("list", help="list built-in tasks",
                         description="Built-in tasks with one line each; file tasks are given as NAME:PATH.")
    ls.set_defaults(func=cmd_eval_list)


def cmd_eval_tasks(args) -> int:
    import json
    from pathlib import Path

    from lmlab.evaluation import eval_tasks, format_table, items_path

    out = Path(args.out) if args.out else Path(args.run_dir) / "eval" / "results.json"
    report = eval_tasks(args.run_dir, args.tasks, shots=args.shots, limit=args.limit, batch_size=args.batch_size,
                        seed=args.seed, world=args.world, out=out, device=args.device, progress=args.progress,
                        weights=args.weights)
    if args.json:
        print(json.dumps(report["results"], indent=2))
    else:
        print(format_table(report))
        print(f"results: {out}  items: {items_path(out)}")
    return 0


def cmd_eval_list(args) -> int:
    from lmlab.evaluation import builtin_tasks
    from lmlab.evaluation.builtin import GROUPS

    tasks = builtin_tasks()
    width = max(len(t["name"]) for t in tasks)
    for t in tasks:
        print(f"{t['name']:<{width}}  {t['summary']}")
    print("groups: " + "; ".join(f"{g} ({len(names)} tasks)" for g, names in GROUPS.items()))
    return 0


# =============================================================================== inspection: inspect / locate ===
def add_inspection_parsers(sub) -> None:
    p = sub.add_parser("inspect", help="look inside a model: FFN memories, logit lens, attention")
    isub = p.add_subparsers(dest="inspect_cmd", required=True, metavar="{memories,lens,attention}")
    m = isub.add_parser("memories", help="FFN key-value memories active on a prompt",
                        description="The keys with the largest coefficients m_i in each MLP layer at the prompt's "
                                    "last token, the tokens their values promote (E·v_i), and — given token shards "
                                    "(--data, or the data dir training recorded) — each key's top trigger prefixes "
                                    "and the per-layer agreement rate (Geva et al. 2021/2022; docs/inspection.md).")
    m.add_argument("run_dir", metavar="RUN_DIR", help="run dir (from `lmlab train` or `lmlab import hf-gpt2`)")
    m.add_argument("--prompt", required=True, metavar="TEXT", help="prompt text")
    m.add_argument("--top-k", type=int, default=5, metavar="K", help="keys shown per layer (default 5)")
    m.add_argument("--layer", type=int, default=None, metavar="L", help="only this layer (default: all)")
    m.add_argument("--position", type=int, default=-1, metavar="P", help="token position to read (default -1: last)")
    m.add_argument("--data", default=None, metavar="DIR", help="token shards for trigger examples "
                                                               "(default: the data dir recorded by training)")
    m.add_argument("--split", default="train", help="split of the shards (default train)")
    m.add_argument("--windows", type=int, default=256, metavar="N", help="corpus windows sampled (default 256)")
    m.add_argument("--window", type=int, default=64, metavar="T", help="tokens per window (default 64)")
    m.add_argument("--triggers", type=int, default=3, metavar="N", help="trigger prefixes per key (default 3)")
    m.add_argument("--seed", type=int, default=0, help="seed of the window sample (default 0)")
    m.add_argument("--json", action="store_true", help="print the result as JSON")
    m.add_argument("--device", default="cpu", help="torch device (default cpu)")
    m.set_defaults(func=cmd_inspect_memories)
    ln = isub.add_parser("lens", help="logit lens: top tokens after every layer",
                         description="Read the residual stream after the embedding and after every block through "
                                     "the final norm and unembedding: the top next tokens at each depth.")
    ln.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    ln.add_argument("--prompt", required=True, metavar="TEXT", help="prompt text")
    ln.add_argument("--top-k", type=int, default=5, metavar="K", help="tokens shown per layer (default 5)")
    ln.add_argument("--all-positions", action="store_true", help="every token position, not only the last")
    ln.add_argument("--json", action="store_true", help="print the result as JSON")
    ln.add_argument("--device", default="cpu", help="torch device (default cpu)")
    ln.set_defaults(func=cmd_inspect_lens)
    a = isub.add_parser("attention", help="attention patterns per layer and head",
                        description="Attention weights of every head for a prompt, drawn as a PNG grid "
                                    "(rows: layers, columns: heads; y: query token, x: key token).")
    a.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    a.add_argument("--prompt", required=True, metavar="TEXT", help="prompt text")
    a.add_argument("--out", required=True, metavar="FIG.png", help="PNG file to write")
    a.add_argument("--layer", type=int, default=None, metavar="L", help="only this layer (default: all)")
    a.add_argument("--json", action="store_true", help="print the patterns as JSON")
    a.add_argument("--device", default="cpu", help="torch device (default cpu)")
    a.set_defaults(func=cmd_inspect_attention)
    loc = sub.add_parser("locate", help="causal tracing: where does the model recall a fact",
                         description="Causal tracing (Meng et al. 2022): corrupt the subject's embeddings with "
                                     "noise, restore one hidden state at a time, and measure how much of P(object) "
                                     "comes back. One fact (--prompt/--subject) or the average over a facts file.")
    loc.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    loc.add_argument("--prompt", metavar="TEXT", help="prompt containing the subject, or with '{}' where it goes")
    loc.add_argument("--subject", metavar="S", help="the subject words to corrupt")
    loc.add_argument("--target", metavar="O", help="the object (default: the model's own greedy next token)")
    loc.add_argument("--facts", metavar="FILE", help="JSONL of {prompt, subject, object|target} (e.g. the world's "
                                                     "facts.jsonl): average over facts")
    loc.add_argument("--limit", type=int, default=None, metavar="N", help="trace only the first N facts")
    loc.add_argument("--all-facts", action="store_true",
                     help="average over every fact, not only those the model predicts correctly")
    loc.add_argument("--out", required=True, metavar="DIR", help="directory for the JSON numbers and PNG heatmaps")
    loc.add_argument("--samples", type=int, default=10, metavar="N", help="noise samples per fact (default 10)")
    loc.add_argument("--noise", type=float, default=3.0, metavar="F",
                     help="noise std as a multiple of the subject embeddings' std (default 3)")
    loc.add_argument("--window", type=int, default=None, metavar="W",
                     help="layers restored together for MLP/attention (default min(10, n_layer//2))")
    loc.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    loc.add_argument("--json", action="store_true", help="print the result as JSON")
    loc.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    loc.add_argument("--device", default="cpu", help="torch device (default cpu)")
    loc.set_defaults(func=cmd_locate)


def cmd_inspect_memories(args) -> int:
    import json

    from lmlab.inspection.commands import inspect_memories

    r = inspect_memories(args.run_dir, args.prompt, top_k=args.top_k, layer=args.layer, data=args.data,
                         split=args.split, n_windows=args.windows, window=args.window, triggers=args.triggers,
                         position=args.position, seed=args.seed, progress=sys.stderr.isatty(), device=args.device)
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
        return 0
    pos = r["position"]
    print(f"prompt {r['prompt']!r}: {len(r['tokens'])} tokens; keys read at position {pos} {repr(r['tokens'][pos])}")
    print("coefficient m_i of key i (blocks.L.mlp.post); tokens its value v_i promotes (E·v_i, top 5)")
    for entry in r["layers"]:
        print(f"layer {entry['layer']}:")
        for k in entry["keys"]:
            promoted = " ".join(repr(p["token"]) for p in k["promotes"])
            print(f"  key {k['key']:>5}  m={k['coefficient']:7.3f}  |v|={k['value_norm']:.3f}  promotes {promoted}")
            for t in k.get("triggers", []):
                prefix = t["prefix"][-60:].replace("\n", " ")
                print(f"      trigger m={t['activation']:6.3f}  ...{prefix!r} → {repr(t['next_token'])}")
    if r["corpus"] is None:
        print(f"({r['corpus_note']})")
        return 0
    c = r["corpus"]
    print(f"agreement: value top token = next token after the key's top trigger ({c['windows']} windows × "
          f"{c['window']} tokens of the {c['split']} split)")
    print(f"  {'layer':>5}  {'keys':>6}  {'agreement':>9}  {'shuffled':>8}  {'uniform':>8}")
    for a in r["agreement"]:
        fmt = lambda x: "-" if x is None else f"{100 * x:.2f}%"  # noqa: E731
        print(f"  {a['layer']:>5}  {a['n_keys']:>6}  {fmt(a['agreement']):>9}  {fmt(a['baseline_shuffled']):>8}  "
              f"{fmt(a['baseline_uniform']):>8}")
    return 0


def cmd_inspect_lens(args) -> int:
    import json

    from lmlab.inspection.commands import inspect_lens

    r = inspect_lens(args.run_dir, args.prompt, top_k=args.top_k, all_positions=args.all_positions,
                     device=args.device)
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
        return 0
    print(f"logit lens on {r['prompt']!r} ({len(r['tokens'])} tokens): final norm + unembedding after each layer")
    for i, p in enumerate(r["positions"]):
        print(f"position {p} {repr(r['tokens'][p])} → next token:")
        for st in r["stages"]:
            tops = "  ".join(f"{repr(t['token'])} {t['prob']:.3f}" for t in st["positions"][i]["top"])
            print(f"  {st['stage']:>9}  {tops}")
    return 0


def cmd_inspect_attention(args) -> int:
    import json

    from lmlab.inspection.commands import inspect_attention

    r = inspect_attention(args.run_dir, args.prompt, args.out, layer=args.layer, device=args.device)
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
        return 0
    toks = r["tokens"]
    print(f"attention on {r['prompt']!r} ({len(toks)} tokens); heatmaps written to {r['figure']}")
    print(f"key each head's last query ({repr(toks[-1])}) attends to most:")
    for i, layer in enumerate(r["layers"]):
        heads = "  ".join(f"H{h} {repr(toks[am[-1]])} {r['patterns'][i][h][-1][am[-1]]:.2f}"
                          for h, am in enumerate(r["argmax"][i]))
        print(f"  layer {layer}: {heads}")
    return 0


def cmd_locate(args) -> int:
    import json

    from lmlab.inspection.commands import locate

    r = locate(args.run_dir, args.out, prompt=args.prompt, subject=args.subject, target=args.target,
               facts=args.facts, limit=args.limit, samples=args.samples, noise=args.noise, window=args.window,
               seed=args.seed, all_facts=args.all_facts, progress=args.progress and sys.stderr.isatty(),
               device=args.device)
    if args.json:
        print(json.dumps(r, indent=2, ensure_ascii=False))
        return 0
    if args.facts is None:
        s, e = r["subject_range"]
        print(f"causal trace of {r['prompt']!r} → {repr(r['target_token'])} (subject tokens {s}..{e - 1}: "
              f"{''.join(r['tokens'][s:e])!r}; {r['samples']} noise samples, ν={r['noise_std']:.4f}, "
              f"window {r['window']})")
        print(f"  P_clean {r['clean_prob']:.4f}   P_corrupted {r['corrupted_prob']:.4f}   "
              f"total effect {r['total_effect']:.4f}" + ("" if r["known"] else "   (not the model's top prediction)"))
        for kind, pk in r["peaks"].items():
            print(f"  {kind:>5}: largest indirect effect {pk['ie']:.4f} at layer {pk['layer']}, token {pk['token']} "
                  f"{repr(pk['token_text'])}")
    else:
        used = "known facts" if r["known_only"] and r["n_known"] else "facts"
        print(f"average causal trace over {r['n_used']} {used} ({r['n_known']} of {r['n_facts']} predicted correctly; "
              f"{r['samples']} noise samples, ν={r['noise_std']:.4f}, window {r['window']})")
        print(f"  P_clean {r['clean_prob']:.4f}   P_corrupted {r['corrupted_prob']:.4f}   "
              f"total effect {r['total_effect']:.4f}")
        L = len(next(iter(r["indirect_effect"].values()))[0])
        for kind, table in r["indirect_effect"].items():
            print(f"  {kind} indirect effect by token bucket (columns: layers 0..{L - 1}):")
            for name, row in zip(r["buckets"], table):
                cells = " ".join("     -" if v is None else f"{v:6.3f}" for v in row)
                print(f"    {name:>23} {cells}")
            pk = r["peaks"][kind]
            print(f"    peak: {pk['ie']:.4f} at layer {pk['layer']}, {pk['bucket']}")
    print("wrote " + ", ".join(r["files"]))
    return 0


# ==================================================================================== editing: edit / edit eval ===
EDIT_USAGE = ("lmlab edit RUN_DIR (--prompt P --subject S --target O | --requests FILE) --out NEW_RUN_DIR "
              "[--method rome|memit|ft] [--layers L[,L..]]\n"
              "       lmlab edit eval RUN_DIR --requests FILE [--method M[,M..]] [--limit N] [--batch N] "
              "[--out results.json]")


def add_editing_parsers(sub) -> None:
    # `lmlab edit RUN_DIR ...` and `lmlab edit eval RUN_DIR ...` share one parser: argparse cannot mix a
    # positional RUN_DIR with subcommands, so the positionals are "[eval] RUN_DIR" and cmd_edit dispatches.
    p = sub.add_parser(
        "edit", help="rewrite facts in a model's weights (ROME, MEMIT, FT-L); `edit eval` scores methods",
        usage=EDIT_USAGE,
        description="Edit: load RUN_DIR, rewrite the fact(s) and write the edited model as a NEW run dir (--out) "
                    "with an edits.jsonl log; the source run dir is never written. Prints P(target_new) and "
                    "P(target_true) and a greedy completion before and after. "
                    "Eval (`lmlab edit eval`): apply each request with each method (one at a time, undone after; "
                    "--batch N applies N at once) and print CounterFact's scores (efficacy, paraphrase, "
                    "neighbourhood, their harmonic mean S, generation entropy) next to the unedited model.",
        epilog="Key statistics for ROME/MEMIT come from the training shards the run dir records, or --stats-data; "
               "they are cached under --cache-dir (default $LMLAB_CACHE_DIR/edit-stats or "
               "~/.cache/lmlab/edit-stats). See docs/editing.md.")
    p.add_argument("positionals", nargs="+", metavar="[eval] RUN_DIR", help="the run dir (after `eval` to evaluate)")
    p.add_argument("--prompt", help="edit: prompt with '{}' where the subject goes, e.g. 'The capital of {} is'")
    p.add_argument("--subject", help="edit: the subject, e.g. Vorland")
    p.add_argument("--target", help="edit: the new object, e.g. Gutaiholm")
    p.add_argument("--target-true", default=None, help="edit: the current object (for the before/after report)")
    p.add_argument("--requests", metavar="FILE",
                   help="JSONL of requests {prompt, subject, target_new, target_true?}, a world's edits.jsonl "
                        "(or the world dir), or a CounterFact .json file")
    p.add_argument("--method", default=None,
                   help="edit: rome (default), memit, ft, or source (correct the training text and train again: "
                        "see --retrain); eval: comma list (default none,rome,ft,memit)")
    p.add_argument("--layers", default=None, metavar="L[,L..]",
                   help="layers to edit (default: chosen by causal tracing; MEMIT: a range)")
    p.add_argument("--out", default=None,
                   help="edit: the NEW run dir to write (required); eval: JSON file for the results")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="use the first N requests")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="eval: requests applied at once (default 1)")
    p.add_argument("--stats-data", default=None, metavar="DIR|FILE",
                   help="text (shard dir or UTF-8 file) for the key statistics (default: the run's training data)")
    p.add_argument("--hparam", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, e.g. --hparam v_steps=40 --hparam n_prefixes=0 (see docs/editing.md); "
                        "eval: applies to every method that has KEY")
    p.add_argument("--stats-tokens", type=int, default=100_000, metavar="N",
                   help="tokens of text for the key statistics (default 100000)")
    p.add_argument("--cache-dir", default=None, help="where key statistics are cached")
    p.add_argument("--no-fluency", action="store_true", help="eval: skip the generation-entropy measurement")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_source_edit_options(p)
    p.set_defaults(func=cmd_edit)


def _edit_layers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LmlabError(f"--layers {text!r}: give layer numbers separated by commas, e.g. --layers 1 or 1,2")


def _edit_hparams(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise LmlabError(f"--hparam {item!r}: write KEY=VALUE, e.g. --hparam v_steps=40")
        try:
            out[key.strip()] = int(value) if value.strip().lstrip("-").isdigit() else float(value)
        except ValueError:
            raise LmlabError(f"--hparam {item!r}: the value must be a number") from None
    return out


def _edit_requests(args) -> list:
    """The requests of `lmlab edit`: from --requests FILE (--limit), or one from --prompt/--subject/--target."""
    from lmlab.editing import load_requests

    if args.requests is not None:
        if args.prompt or args.subject or args.target:
            raise LmlabError("give either --requests FILE or --prompt/--subject/--target, not both")
        requests = load_requests(args.requests, limit=args.limit)
    else:
        if args.prompt is None or args.subject is None or args.target is None:
            raise LmlabError("give --prompt 'The capital of {} is' --subject S --target O (or --requests FILE)")
        prompt = args.prompt
        if "{}" not in prompt:
            if args.subject and args.subject in prompt:
                prompt = prompt.replace(args.subject, "{}", 1)
            else:
                raise LmlabError(f"subject {args.subject!r} is not in the prompt {args.prompt!r}; write '{{}}' where "
                                 "the subject goes, e.g. --prompt 'The capital of {} is'")
        requests = [{"prompt": prompt, "subject": args.subject, "target_new": args.target,
                     "target_true": args.target_true}]
    return requests


def cmd_edit(args) -> int:
    if args.positionals[0] == "eval":
        return cmd_edit_eval(args)
    from lmlab.editing.runs import edit_run

    if len(args.positionals) != 1:
        raise LmlabError(f"expected one RUN_DIR, got {' '.join(args.positionals)} "
                         f"(usage: {EDIT_USAGE.splitlines()[0]})")
    run_dir = args.positionals[0]
    method = args.method or "rome"
    if method == "source" or _source_options_given(args):
        return cmd_edit_source(args)
    if args.out is None:
        raise LmlabError("--out NEW_RUN_DIR is required: the edited model is written to a new run dir")
    requests = _edit_requests(args)
    result = edit_run(run_dir, requests, args.out, method, layers=_edit_layers(args.layers),
                      stats_data=args.stats_data, n_tokens=args.stats_tokens, cache_dir=args.cache_dir,
                      device=args.device, progress=not args.quiet, **_edit_hparams(args.hparam))
    fmt = lambda p: "-" if p is None else f"{p:.4f}"  # noqa: E731
    for entry in result.log[:20]:
        r, b, a = entry["request"], entry["before"], entry["after"]
        print(f"{r['prompt'].replace('{}', r['subject'], 1)!r} → {r['target_new']!r}"
              + (f" (was {r['target_true']!r})" if r.get("target_true") else ""))
        print(f"  P(new)  {fmt(b['p_new'])} → {fmt(a['p_new'])}")
        if r.get("target_true"):
            print(f"  P(true) {fmt(b['p_true'])} → {fmt(a['p_true'])}")
        if "completion_before" in entry:
            print(f"  before: {entry['completion_before']!r}")
            print(f"  after:  {entry['completion_after']!r}")
    if len(result.log) > 20:
        print(f"... {len(result.log) - 20} more in {args.out}/edits.jsonl")
    norms = ", ".join(f"{n} {v:.3g}" for n, v in result.log[0]["update_norms"].items())
    print(f"{method} edited layer(s) {','.join(map(str, result.layers))} for {len(result.log)} request(s) "
          f"(update norms: {norms}) → {args.out}")
    return 0


def cmd_edit_eval(args) -> int:
    from lmlab.checkpoint import load_run
    from lmlab.editing import load_requests
    from lmlab.editing.evaluate import evaluate_edits, format_table
    from lmlab.editing.runs import stats_data_of
    from lmlab.utils import atomic_write_json

    if len(args.positionals) != 2:
        raise LmlabError(f"usage: {EDIT_USAGE.splitlines()[1].strip()}")
    run_dir = args.positionals[1]
    if args.requests is None:
        raise LmlabError("--requests FILE is required (a world's edits.jsonl or a CounterFact .json file)")
    if args.prompt or args.subject or args.target:
        raise LmlabError("`lmlab edit eval` reads its requests from --requests; leave out --prompt/--subject/--target")
    if args.limit is not None and args.limit < 1:
        raise LmlabError("--limit must be at least 1")
    methods = [m.strip() for m in (args.method or "none,rome,ft,memit").split(",") if m.strip()]
    if "none" not in methods:
        methods = ["none"] + methods
    requests = load_requests(args.requests, limit=args.limit)
    run = load_run(run_dir, device=args.device)
    data = stats_data_of(run_dir, args.stats_data) if any(m in ("rome", "memit") for m in methods) else None
    layers = _edit_layers(args.layers)
    from lmlab.editing import make_hparams

    given = _edit_hparams(args.hparam)
    hparams = {}
    for m in methods:
        if m != "none":
            known = set(make_hparams(m).__dataclass_fields__)
            hparams[m] = {k: v for k, v in given.items() if k in known}
    unused = sorted(set(given) - {k for h in hparams.values() for k in h})
    if unused:
        raise LmlabError(f"--hparam {', '.join(unused)}: no method in {methods} has such a setting")
    results = evaluate_edits(run.model, run.tokenizer, requests, methods, batch=args.batch,
                             layers={m: layers for m in methods if m != "none"} if layers else None,
                             stats_data=data, n_tokens=args.stats_tokens, cache_dir=args.cache_dir,
                             fluency=not args.no_fluency, hparams=hparams,
                             progress=not args.quiet)
    print(format_table(results))
    if args.out:
        atomic_write_json(args.out, {"run_dir": str(run_dir), "requests": str(args.requests), **results})
        print(f"wrote {args.out}")
    return 0


# ========================================================================= embed: neighbors / analogy ===
def add_embed_parsers(sub) -> None:
    p = sub.add_parser("embed", help="query word vectors (cooc, ppmi, word2vec run dirs)",
                       description="Nearest words and analogies in a word-embedding run dir "
                                   "(see docs/embeddings.md).")
    esub = p.add_subparsers(dest="embed_command", required=True, metavar="VERB")
    n = esub.add_parser("neighbors", help="the words nearest to a word (cosine similarity)")
    n.add_argument("run_dir", metavar="RUN_DIR", help="run dir trained with --model cooc, ppmi or word2vec")
    n.add_argument("word", metavar="WORD", help="the query word (as the word tokenizer writes it; case matters)")
    n.add_argument("--k", type=int, default=10, help="how many neighbours (default 10)")
    n.add_argument("--json", action="store_true", help="print JSON [[word, cosine], ...]")
    n.set_defaults(func=cmd_embed_neighbors)
    a = esub.add_parser("analogy", help="a : b :: c : ? by 3CosAdd (b - a + c, inputs excluded)")
    a.add_argument("run_dir", metavar="RUN_DIR", help="run dir trained with --model cooc, ppmi or word2vec")
    a.add_argument("words", nargs=3, metavar=("A", "B", "C"), help="a is to b as c is to ?")
    a.add_argument("--k", type=int, default=5, help="how many answers (default 5)")
    a.add_argument("--json", action="store_true", help="print JSON [[word, cosine], ...]")
    a.set_defaults(func=cmd_embed_analogy)


def _print_scored_words(rows: list[tuple[str, float]], as_json: bool) -> None:
    if as_json:
        import json

        print(json.dumps([[w, round(s, 6)] for w, s in rows]))
        return
    for w, s in rows:
        print(f"{s:+.4f}  {w}")


def cmd_embed_neighbors(args) -> int:
    from lmlab.evaluation.embeddings import neighbors

    if args.k < 1:
        raise LmlabError(f"--k must be ≥ 1 (got {args.k})")
    _print_scored_words(neighbors(args.run_dir, args.word, k=args.k), args.json)
    return 0


def cmd_embed_analogy(args) -> int:
    from lmlab.evaluation.embeddings import analogy

    if args.k < 1:
        raise LmlabError(f"--k must be ≥ 1 (got {args.k})")
    a, b, c = args.words
    _print_scored_words(analogy(args.run_dir, a, b, c, k=args.k), args.json)
    return 0


# ================================================================================= fill: masked-word prediction ===
def add_fill_parser(sub) -> None:
    p = sub.add_parser("fill", help="predict masked words with a BERT-style run dir",
                       description="The likeliest tokens at each [MASK] (or <mask>) of a text, from a run trained "
                                   "with --model bert (see docs/models-bert.md). Each mask is one token.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run dir trained with --model bert")
    p.add_argument("text", metavar="TEXT", help='text with one or more masks, e.g. "The capital of Veruna is [MASK]."')
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="candidates per mask (default 5)")
    p.add_argument("--json", action="store_true", help="print JSON: the filled text and [token, probability] lists")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=cmd_fill)


def cmd_fill(args) -> int:
    import json

    from lmlab.generation.fill import MASK_MARKERS, fill_mask

    predictions = fill_mask(args.run_dir, args.text, top_k=args.top_k, device=args.device)
    # The filled-in text shows each mask's top token without the leading space a BPE token may carry.
    best = iter([rows[0][0].strip() or rows[0][0] for rows in predictions])
    filled = MASK_MARKERS.sub(lambda _: next(best), args.text)
    if args.json:
        print(json.dumps({"text": args.text, "filled": filled,
                          "masks": [[[t, round(p, 6)] for t, p in rows] for rows in predictions]},
                         ensure_ascii=False, indent=2))
        return 0
    print(filled)
    for n, rows in enumerate(predictions, 1):
        print(f"mask {n}:")
        for t, p in rows:
            print(f"  {p:.4f}  {t!r}")
    return 0


# ============================================================= seq2seq: data prepare-parallel / translate / eval ===
def add_data_prepare_parallel_parser(dsub) -> None:
    """`lmlab data prepare-parallel` (sentence pairs → `source<sep>target` shards); called from add_data_parser."""
    pp = dsub.add_parser("prepare-parallel", help="sentence pairs → shards of 'source<sep>target' documents",
                         description="Read parallel text (a TAB-separated file such as Tatoeba's, PREFIX for "
                                     "PREFIX.<src> + PREFIX.<tgt> aligned files, or a directory of them such as "
                                     "Multi30k) and write a shard directory for `lmlab train --model seq2seq`, with "
                                     "a tokenizer trained on both languages (see docs/models-seq2seq.md).")
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
    pp.set_defaults(func=cmd_data_prepare_parallel)


def cmd_data_prepare_parallel(args) -> int:
    from lmlab.data.parallel import prepare_parallel
    from lmlab.models.seq2seq import Seq2Seq

    m = prepare_parallel(args.inputs, args.out, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                         reverse=args.reverse, tokenizer=args.tokenizer, vocab_size=args.vocab_size,
                         special_tokens=Seq2Seq.special_tokens, val_fraction=args.val_fraction, seed=args.seed,
                         dedup=args.dedup, progress=not args.no_progress)
    par, tok = m["parallel"], m["tokenizer"]
    direction = f"{par['tgt_lang']} → {par['src_lang']}" if par["reverse"] else f"{par['src_lang']} → {par['tgt_lang']}"
    print(f"read {m['documents_read']} pairs ({m['dedup']['exact_duplicates_removed']} repeated pairs removed); "
          f"val split: {par['val_split']}; direction as read: {direction}")
    print(f"tokenizer: {tok['kind']}, vocab {tok['vocab_size']}, fingerprint {tok['fingerprint']}")
    for name, s in m["splits"].items():
        longest = par["longest_document_tokens"].get(name, 0)
        print(f"{name:5s}: {s['documents']} pairs, {s['tokens']} tokens, longest source<sep>target {longest} tokens "
              "(keep --block_size above it)")
    print(f"wrote {args.out}; train with: lmlab train --model seq2seq --data {args.out} --out RUN_DIR")
    return 0


def add_translate_parser(sub) -> None:
    p = sub.add_parser("translate", help="translate text with an encoder-decoder run dir",
                       description="Decode a target for TEXT with a run trained with --model seq2seq: greedy by "
                                   "default, beam search with --beam B (see docs/models-seq2seq.md).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run dir trained with --model seq2seq")
    p.add_argument("text", nargs="+", metavar="TEXT", help="source text(s); each is translated separately")
    p.add_argument("--beam", type=int, default=1, metavar="B", help="beam search with B beams (default 1: greedy)")
    p.add_argument("--length-penalty", type=float, default=1.0, metavar="A",
                   help="beam score = sum log-prob / len**A (default 1.0)")
    p.add_argument("--max-new-tokens", type=int, default=None, metavar="N",
                   help="most output tokens (default: block_size - 1)")
    p.add_argument("--json", action="store_true", help="print JSON: text, tokens, log-prob, finish reason")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=cmd_translate)


def cmd_translate(args) -> int:
    import json

    from lmlab.checkpoint import load_run
    from lmlab.generation.seq2seq import translate

    run = load_run(args.run_dir, device=args.device)
    out = translate(run.model, run.tokenizer, args.text, max_new_tokens=args.max_new_tokens, beam=args.beam,
                    length_penalty=args.length_penalty)
    if args.json:
        rows = [t.to_dict() for t in out]
        print(json.dumps(rows[0] if len(rows) == 1 else rows, ensure_ascii=False, indent=2))
        return 0
    for t in out:
        print(t.text)
    return 0


def add_eval_translation_parser(esub) -> None:
    """`lmlab eval translation` (BLEU and chrF); called from add_eval_parser."""
    t = esub.add_parser("translation", help="BLEU and chrF of an encoder-decoder run (sacrebleu)",
                        description="Translate held-out sentence pairs and score them with sacrebleu's corpus BLEU "
                                    "and chrF. Default data: the val split of the run's own training data.")
    t.add_argument("run_dir", metavar="RUN_DIR", help="run dir trained with --model seq2seq")
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
    t.add_argument("--json", action="store_true", help="print the figures as JSON")
    t.add_argument("--device", default="cpu", help="torch device (default cpu)")
    t.set_defaults(func=cmd_eval_translation)


def cmd_eval_translation(args) -> int:
    import json

    from lmlab.checkpoint import load_run
    from lmlab.evaluation.translation import evaluation_pairs, translation_scores

    run = load_run(args.run_dir, device=args.device)
    pairs = evaluation_pairs(run, args.data, split=args.split, src_lang=args.src_lang, tgt_lang=args.tgt_lang,
                             reverse=args.reverse)
    r = translation_scores(run, pairs, beam=args.beam, limit=args.limit, examples=args.examples)
    if args.json:
        print(json.dumps(r, ensure_ascii=False, indent=2))
        return 0
    for e in r.get("examples", []):
        print(f"  {e['source']!r} → {e['translation']!r} (reference {e['reference']!r})")
    search = "greedy" if r["beam"] == 1 else f"beam {r['beam']}"
    print(f"BLEU {r['bleu']:.2f} | chrF {r['chrf']:.2f} | {r['n']} pairs, {search}")
    return 0


# ======================================================= classifiers: finetune / classify / eval classify ===
def add_classifier_parsers(sub) -> None:
    f = sub.add_parser(
        "finetune", help="train a text classifier, or instruction-tune a GPT run (--instructions)",
        usage="lmlab finetune [RUN_DIR] --model gpt|bert|bow|lstm --data FILE --out NEW_RUN_DIR [options] "
              "[--key value ...]\n       lmlab finetune RUN_DIR --instructions FILE.jsonl --out NEW_RUN_DIR "
              "[--replay SHARE] [--key value ...]",
        description="Train a classifier on a labelled file (SST-2 TSV, UCI labelled sentences, JSONL "
                    "{text,label}, or a world dir's reviews) into a new run dir; RUN_DIR (--model gpt|bert) is only "
                    "read. Model and training settings as --key value (e.g. --max_iters 300 --lm_coef 0.5). "
                    "See docs/classification.md. With --instructions, supervised fine-tuning of a GPT run on "
                    "instruction → response examples (docs/instruction-tuning.md).")
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
    add_instruction_tuning_options(f)
    f.set_defaults(func=cmd_finetune, accepts_overrides=True)
    c = sub.add_parser("classify", help="label texts with a classifier run dir",
                       description="Print the most probable label and its probability for each text.")
    c.add_argument("run_dir", metavar="RUN_DIR", help="classifier run dir (lmlab finetune)")
    c.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify")
    c.add_argument("--json", action="store_true", help="print JSON [[label, probability], ...]")
    c.add_argument("--device", default="cpu", help="torch device (default cpu)")
    c.set_defaults(func=cmd_classify)


def add_eval_classify_parser(esub) -> None:
    """`lmlab eval classify`; called from add_eval_parser."""
    e = esub.add_parser("classify", help="accuracy of a classifier run dir on a labelled file",
                        description="Accuracy (and per-class accuracy) of a classifier run on labelled data.")
    e.add_argument("run_dir", metavar="RUN_DIR", help="classifier run dir (lmlab finetune)")
    e.add_argument("--data", required=True, metavar="FILE", help="labelled file (same formats as lmlab finetune)")
    e.add_argument("--batch-size", type=int, default=64, metavar="N", help="texts per forward pass (default 64)")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.add_argument("--device", default="cpu", help="torch device (default cpu)")
    e.set_defaults(func=cmd_eval_classify)


def cmd_finetune(args) -> int:
    from lmlab.training.finetune import finetune

    # RUN_DIR is read here, not by argparse: an optional positional would swallow the value of a --key value
    # setting that argparse does not know (e.g. the 50 of --max_iters 50).
    words, overrides = _split_free_words(args.overrides)
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


def _split_free_words(extra: list[str]) -> tuple[list[str], list[str]]:
    """(words that are not the value of a --key, the --key [value] rest) of argparse's unknown arguments."""
    words: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(extra):
        tok = extra[i]
        if tok.startswith("--") and len(tok) > 2:
            rest.append(tok)
            if "=" not in tok and i + 1 < len(extra) and not extra[i + 1].startswith("--"):
                rest.append(extra[i + 1])
                i += 1
        else:
            words.append(tok)
        i += 1
    return words, rest


def cmd_classify(args) -> int:
    import json

    from lmlab.evaluation.classification import predict

    rows = predict(args.run_dir, args.texts, device=args.device)
    if args.json:
        print(json.dumps([[label, round(p, 6)] for label, p in rows]))
    else:
        for text, (label, p) in zip(args.texts, rows):
            print(f"{label}\t{p:.4f}\t{text}")
    return 0


def cmd_eval_classify(args) -> int:
    import json

    from lmlab.evaluation.classification import accuracy

    res = accuracy(args.run_dir, args.data, batch_size=args.batch_size, device=args.device)
    if args.json:
        print(json.dumps(res))
    else:
        per = ", ".join(f"{k} {v:.4f}" for k, v in res["per_class"].items() if v is not None)
        print(f"accuracy {res['accuracy']:.4f} ({res['correct']}/{res['n']}) on {res['data']}; per class: {per}")
    return 0


# ========================================================================= attribution: lmlab attribute ... ===
def _attribute_options(p, *, index_dir: bool = True, json: bool = True, device: bool = False) -> None:
    """Options several `lmlab attribute` verbs share."""
    if index_dir:
        p.add_argument("--index-dir", default=None, metavar="DIR", help="index location (default beside shards)")
    if json:
        p.add_argument("--json", action="store_true", help="print JSON")
    if device:
        p.add_argument("--device", default="cpu", help="torch device (default cpu)")


def add_attribution_parsers(sub) -> None:
    """`lmlab attribute index|count|find|trace|memorisation|knn|neighbours` (lmlab.attribution)."""
    p = sub.add_parser("attribute", help="trace outputs back to training data: suffix index, spans, kNN memory",
                       description="Which training text made this output: an exact-match index over token shards "
                                   "(counts, occurrences, verbatim spans, memorisation) and a kNN datastore.")
    asub = p.add_subparsers(dest="attribute_cmd", required=True, metavar="VERB")

    ix = asub.add_parser("index", help="build the suffix-array index of a shard dir",
                         description="Build the exact-match index of DATA_DIR's shards, stored beside them "
                                     "(DATA_DIR/attribution-index) with the shards' fingerprint.")
    ix.add_argument("data_dir", metavar="DATA_DIR", help="shard dir from `lmlab data prepare`")
    ix.add_argument("--splits", default="train", help="splits to index: train (default), all, or a list like "
                                                      "train,val (a held-out split should stay out)")
    ix.add_argument("--index-dir", default=None, metavar="DIR", help="where to write it (default DATA_DIR/"
                                                                       "attribution-index)")
    ix.set_defaults(func=cmd_attribute_index)

    for verb, text_help in (("count", "occurrences of a text in the indexed shards"),
                            ("find", "where a text occurs: documents, offsets and context")):
        q = asub.add_parser(verb, help=text_help, description=text_help[0].upper() + text_help[1:] +
                            " (tokenized with the shards' tokenizer; build the index first).")
        q.add_argument("data_dir", metavar="DATA_DIR", help="indexed shard dir")
        q.add_argument("text", metavar="TEXT", help="the text to look for")
        _attribute_options(q)
        if verb == "find":
            q.add_argument("--limit", type=int, default=10, metavar="N", help="occurrences to show (default 10)")
            q.add_argument("--context", type=int, default=16, metavar="T",
                           help="tokens of context either side (default 16)")
        q.set_defaults(func=cmd_attribute_count if verb == "count" else cmd_attribute_find)

    tr = asub.add_parser("trace", help="generate, then mark the completion's verbatim training spans",
                         description="Generate a completion of --prompt with RUN_DIR's model, then mark the spans "
                                     "of the completion that occur verbatim in the training shards (OLMoTrace's "
                                     "procedure) and list their source documents.")
    tr.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    tr.add_argument("--data", default=None, metavar="DATA_DIR", help="indexed shard dir (default: the run's)")
    tr.add_argument("--prompt", default="", help="prompt text to continue")
    tr.add_argument("--text", default=None, help="trace this text as the completion instead of generating one")
    tr.add_argument("--max-new-tokens", type=int, default=48, metavar="N", help="tokens to generate (default 48)")
    tr.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default 0: greedy)")
    tr.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    tr.add_argument("--min-len", type=int, default=4, metavar="T", help="shortest span in tokens (default 4)")
    tr.add_argument("--keep-fraction", type=float, default=0.05, metavar="F",
                    help="keep the ceil(F × tokens) rarest spans (default 0.05, as OLMoTrace)")
    tr.add_argument("--docs", type=int, default=10, metavar="N", help="documents per span (default 10)")
    _attribute_options(tr, device=True)
    tr.set_defaults(func=cmd_attribute_trace)

    mem = asub.add_parser("memorisation", help="share of sampled tokens inside training spans of ≥ k tokens",
                          description="Sample texts from RUN_DIR's model and report, per span length k, the share "
                                      "of their tokens inside verbatim training spans of at least k tokens, beside "
                                      "the same share for held-out documents (the baseline).")
    mem.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    mem.add_argument("--data", default=None, metavar="DATA_DIR", help="indexed shard dir (default: the run's)")
    mem.add_argument("--samples", type=int, default=32, metavar="N", help="texts to sample (default 32)")
    mem.add_argument("--max-new-tokens", type=int, default=64, metavar="N", help="tokens per sample (default 64)")
    mem.add_argument("--k", default="2,4,8,16,32", help="span lengths, comma-separated (default 2,4,8,16,32)")
    mem.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (default 1)")
    mem.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    mem.add_argument("--held-out", default="val", metavar="SPLIT", help="baseline split (default val)")
    _attribute_options(mem, device=True)
    mem.set_defaults(func=cmd_attribute_memorisation)

    kn = asub.add_parser("knn", help="build a kNN-LM datastore of (MLP input, next token) over training shards",
                         description="Stream the training shards through RUN_DIR's model and store, for every "
                                     "position, the input of a block's MLP (after its LayerNorm) as the key and the "
                                     "next token as the value, in a faiss index (for kNN-LM and `neighbours`).")
    kn.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    kn.add_argument("--data", default=None, metavar="DATA_DIR", help="shard dir (default: the run's)")
    kn.add_argument("--out", required=True, metavar="DATASTORE", help="directory to write")
    kn.add_argument("--layer", type=int, default=-1, help="block whose MLP input is the key (default -1: last)")
    kn.add_argument("--splits", default="train", help="splits to store (default train)")
    kn.add_argument("--index", dest="kind", default="flat", choices=["flat", "ivf"],
                    help="faiss index: flat (exact, default) or ivf (approximate, inverted lists)")
    kn.add_argument("--nlist", type=int, default=None, metavar="N", help="IVF lists (default ~4·√keys)")
    kn.add_argument("--max-tokens", type=int, default=None, metavar="N", help="store only the first N tokens")
    kn.add_argument("--batch-size", type=int, default=8, metavar="N", help="windows per forward pass (default 8)")
    _attribute_options(kn, index_dir=False, json=False, device=True)
    kn.set_defaults(func=cmd_attribute_knn)

    nb = asub.add_parser("neighbours", help="the training contexts nearest to one position of a text",
                         description="Explain a prediction by example: the k stored training contexts whose keys "
                                     "lie nearest to the key at --position of the text, with their documents and "
                                     "the token that came next in each.")
    nb.add_argument("run_dir", metavar="RUN_DIR", help="run dir the datastore was built with")
    nb.add_argument("--datastore", required=True, metavar="DIR", help="kNN datastore (`lmlab attribute knn`)")
    nb.add_argument("--prompt", required=True, help="the text")
    nb.add_argument("--position", type=int, default=-1, help="token position in the text (default -1: last)")
    nb.add_argument("--generate", type=int, default=0, metavar="N",
                    help="first extend the text by N greedy tokens (default 0)")
    nb.add_argument("--k", type=int, default=8, help="neighbours to show (default 8)")
    _attribute_options(nb, index_dir=False, device=True)
    nb.set_defaults(func=cmd_attribute_neighbours)


def _int_list(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LmlabError(f"{what} must be comma-separated integers, got {text!r}") from None


def cmd_attribute_index(args) -> int:
    from lmlab.attribution import index
    from lmlab.attribution.suffix_array import describe_build

    print(describe_build(index(args.data_dir, splits=args.splits, index_dir=args.index_dir)))
    return 0


def cmd_attribute_count(args) -> int:
    from lmlab.attribution import count

    n = count(args.data_dir, args.text, index_dir=args.index_dir)
    print(f'{{"count": {n}}}' if args.json else n)
    return 0


def cmd_attribute_find(args) -> int:
    import json

    from lmlab.attribution import find

    n, hits = find(args.data_dir, args.text, limit=args.limit, context=args.context, index_dir=args.index_dir)
    if args.json:
        print(json.dumps({"count": n, "occurrences": [h.to_dict() for h in hits]}, ensure_ascii=False, indent=2))
        return 0
    print(f"{n} occurrence(s)" + (f", first {len(hits)}:" if hits else ""))
    for h in hits:
        print(f"  doc {h.document} ({h.split} #{h.split_document}) @ {h.offset}: "
              f"{h.before!r} [[{h.match}]] {h.after!r}")
    return 0


def cmd_attribute_trace(args) -> int:
    import json

    from lmlab.attribution import trace

    r = trace(args.run_dir, args.prompt, data_dir=args.data, index_dir=args.index_dir, text=args.text,
              max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
              min_len=args.min_len, keep_fraction=args.keep_fraction, docs_per_span=args.docs, device=args.device)
    if args.json:
        print(json.dumps(r.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(f"{r.prompt}{r.marked}")
    print(f"\n{len(r.trace.spans)} verbatim span(s) kept (of {len(r.trace.ids)} tokens):")
    for n, (span, text) in enumerate(zip(r.trace.spans, r.span_texts)):
        docs = ", ".join(str(d) for d in span.documents)
        print(f"  [{n}] {text!r}: {span.end - span.start} tokens, {span.count} occurrence(s), documents {docs}")
    if r.trace.documents:
        print("documents, best first:")
    for d in r.trace.documents[:5]:
        print(f"  doc {d.document} ({d.split} #{d.split_document}): spans {d.spans}: "
              f"{r.document_texts[d.document]!r}")
    return 0


def cmd_attribute_memorisation(args) -> int:
    import json

    from lmlab.attribution import memorisation

    r = memorisation(args.run_dir, data_dir=args.data, index_dir=args.index_dir, samples=args.samples,
                     max_new_tokens=args.max_new_tokens, ks=_int_list(args.k, "--k"), temperature=args.temperature,
                     seed=args.seed, held_out_split=args.held_out, device=args.device)
    if args.json:
        print(json.dumps(r.to_dict(), ensure_ascii=False, indent=2))
        return 0
    g, h = r.generated, r.held_out
    print(f"share of tokens inside training spans of ≥ k tokens ({g.n_tokens} sampled tokens in {g.n_sequences} "
          f"texts; {h.n_tokens} held-out tokens of {r.held_out_split} in {h.n_sequences} documents)")
    print(f"{'k':>4}  {'sampled':>8}  {'held-out':>8}")
    for k, a, b in zip(g.ks, g.shares, h.shares):
        print(f"{k:>4}  {a:>8.3f}  {b:>8.3f}")
    return 0


def cmd_attribute_knn(args) -> int:
    from lmlab.attribution import knn
    from lmlab.attribution.datastore import describe_datastore

    meta = knn(args.run_dir, args.out, data_dir=args.data, layer=args.layer, splits=args.splits, kind=args.kind,
               nlist=args.nlist, max_tokens=args.max_tokens, batch_size=args.batch_size, device=args.device)
    print(f"{describe_datastore(meta)} -> {args.out}")
    return 0


def cmd_attribute_neighbours(args) -> int:
    import json

    from lmlab.attribution import neighbours

    r = neighbours(args.run_dir, args.datastore, args.prompt, position=args.position, k=args.k,
                   max_new_tokens=args.generate, device=args.device)
    if args.json:
        print(json.dumps(r.to_dict(), ensure_ascii=False, indent=2))
        return 0
    follows = f", next in the text: {r.next_token!r}" if r.next_token is not None else ""
    print(f"position {r.position}: {r.context!r}{follows}")
    print("model: " + ", ".join(f"{t!r} {p:.2f}" for t, p in r.model_top))
    for n in r.neighbours:
        print(f"  d={n.distance:8.3f}  doc {n.document} ({n.split} #{n.split_document}) @ {n.offset}: "
              f"{n.context!r} -> {n.next_token!r}")
    return 0


def cmd_eval_ppl_memory(args) -> int:
    """`lmlab eval ppl RUN --knn DATASTORE | --infgram DATA_DIR`: perplexity with and without interpolation."""
    import json

    from lmlab.attribution import memory_perplexity

    r = memory_perplexity(args.run_dir, data=args.data, split=args.split, knn=args.knn, infgram=args.infgram,
                          lam=args.lam, k=args.k, temperature=args.knn_temperature, max_tokens=args.max_tokens,
                          batch_size=args.batch_size, device=args.device)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{r['data']}: {r['n_tokens']} tokens | LM alone: ppl {r['lm']['ppl']:.3f}")
    for name, label in (("knn", "kNN-LM"), ("infgram", "∞-gram + LM")):
        if name in r:
            part = r[name]
            gain = 100 * (1 - part["ppl"] / r["lm"]["ppl"])
            print(f"{label} (λ={part['lambda']}): ppl {part['ppl']:.3f} ({gain:+.1f}% vs LM alone)")
            print("  λ sweep: " + ", ".join(f"{lam:g}: {ppl:.3f}" for lam, ppl in part["sweep"].items()))
    return 0


# ======================================================================================== serve: HTTP API + playground ===
def add_serve_parser(sub) -> None:
    p = sub.add_parser("serve", help="serve a run dir: OpenAI-compatible API and a playground page",
                       description="Serve a GPT run dir over HTTP until interrupted: an OpenAI-compatible "
                                   "completions API (/v1/completions, /v1/chat/completions for instruction-tuned runs, "
                                   "/v1/models, /tokenize, /detokenize, /health, /metrics), endpoints that look inside the model, and a playground page at /. "
                                   "Concurrent requests are decoded together. See docs/serving.md.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run dir of a GPT (e.g. runs/tiny)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help="require `Authorization: Bearer KEY` on every API call (default: $LMLAB_API_KEY, else none)")
    p.add_argument("--allow-edits", action="store_true",
                   help="let clients rewrite facts in the served weights with ROME (POST/DELETE /v1/edits)")
    p.add_argument("--edit-data", default=None, metavar="PATH",
                   help="shards or text for ROME's key statistics (default: the run's training shards)")
    p.add_argument("--max-batch", type=int, default=32, metavar="N", help="sequences decoded together (default 32)")
    p.add_argument("--max-waiting", type=int, default=256, metavar="N",
                   help="sequences queued before requests are refused with 429 (default 256)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (repeatable; default: CORS off)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_weights_argument(p)
    p.add_argument("--index", default=None, metavar="DIR", help="attribution index of the run's training shards for "
                   "/v1/attribution/spans (default DATA_DIR/attribution-index, from `lmlab attribute index`)")
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from lmlab.serving import serve

    serve(args.run_dir, host=args.host, port=args.port, api_key=args.api_key, allow_edits=args.allow_edits,
          max_batch=args.max_batch, max_waiting=args.max_waiting, edit_data=args.edit_data,
          cors_origins=args.cors_origin, device=args.device, weights=args.weights, index_dir=args.index)
    return 0


# ======================================================================================================== plan ===
def add_plan_parser(sub) -> None:
    p = sub.add_parser("plan", help="memory per device of training a GPT: DDP, ZeRO-1/2, FSDP; largest micro-batch",
                       description="Estimate the memory per device of training a GPT (weights, gradients, AdamW "
                                   "state, activations per micro-batch) for DDP, ZeRO-1, ZeRO-2 and FSDP (ZeRO-3), "
                                   "the largest micro-batch that fits and the tokens per optimizer step. Model "
                                   "settings may be given as --key value, as for `lmlab train`. See "
                                   "docs/training.md.")
    p.add_argument("--preset", help="model preset (default tiny; e.g. small = GPT-2 124M)")
    p.add_argument("--config", metavar="FILE", help="JSON or YAML settings file, as for `lmlab train`")
    p.add_argument("--devices", type=int, default=1, metavar="N", help="number of devices (default 1)")
    p.add_argument("--device-mem", type=float, default=80.0, metavar="GB",
                   help="memory per device in GiB (default 80)")
    p.add_argument("--strategy", nargs="+", default=["all"], metavar="NAME",
                   help="ddp, zero1, zero2, fsdp, or all (default)")
    p.add_argument("--dtype", default=None, help="compute dtype: float32, bfloat16, float16 (default: the "
                                                 "settings' dtype; auto = bfloat16)")
    p.add_argument("--activation-checkpointing", action="store_true", default=None,
                   help="recompute block activations in backward")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="micro-batch per device for the activation column (default: the settings' batch_size)")
    p.add_argument("--grad-accum", type=int, default=None, metavar="G", help="micro-steps per optimizer step")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(func=cmd_plan, accepts_overrides=True)


def cmd_plan(args) -> int:
    import json

    from lmlab.recipes import preset_settings
    from lmlab.training.plan import format_plan, plan

    result = plan(preset=args.preset, config_file=args.config, overrides=args.overrides, devices=args.devices,
                  base_settings=preset_settings("gpt", args.preset, config_file=args.config),
                  device_mem_gb=args.device_mem, dtype=args.dtype,
                  activation_checkpointing=args.activation_checkpointing, micro_batch=args.batch_size,
                  grad_accum=args.grad_accum, strategies=args.strategy)
    print(json.dumps(result.to_dict(), indent=2) if args.json else format_plan(result))
    return 0


# ============================================================================ editing: correct at the source ===
def add_source_edit_options(p) -> None:
    """The options of `lmlab edit RUN --method source` (on the `edit` parser)."""
    g = p.add_argument_group("--method source", "correct the old facts in the training text, re-prepare the shards "
                             "with the run's tokenizer and train again (docs/editing.md)")
    how = g.add_mutually_exclusive_group()
    how.add_argument("--retrain", action="store_true",
                     help="train a new model from scratch with the run's own model and training config")
    how.add_argument("--continue-steps", type=int, default=None, metavar="N",
                     help="train the run's weights N more steps on the corrected shards")
    g.add_argument("--remove", action="store_true",
                   help="drop each statement of an old fact instead of rewriting it to the new object")
    g.add_argument("--lr", type=float, default=None,
                   help="with --continue-steps: constant learning rate (default: the run's min_lr)")
    g.add_argument("--corpus", default=None, metavar="DIR",
                   help="the directory holding the shards' source files, when their recorded paths do not resolve")


def _source_options_given(args) -> bool:
    return bool(args.retrain or args.continue_steps is not None or args.remove or args.lr is not None
                or args.corpus is not None)


def cmd_edit_source(args) -> int:
    from lmlab.editing.source import correct_at_source

    if (args.method or "rome") != "source":
        raise LmlabError("--retrain, --continue-steps, --remove, --lr and --corpus go with --method source")
    if len(args.positionals) != 1:
        raise LmlabError(f"expected one RUN_DIR, got {' '.join(args.positionals)}")
    if args.out is None:
        raise LmlabError("--out NEW_RUN_DIR is required: the corrected corpus, shards and model go to a new run dir")
    if args.layers or args.hparam or args.stats_data:
        raise LmlabError("--layers, --hparam and --stats-data are settings of rome/memit/ft, not of --method source")
    if args.requests is None and args.target_true is None:
        raise LmlabError("--method source looks for the old object in the text: give it with --target-true OLD "
                         "(or use --requests FILE)")
    requests = _edit_requests(args)
    rec = correct_at_source(args.positionals[0], requests, args.out, retrain=args.retrain,
                            continue_steps=args.continue_steps, remove=args.remove, lr=args.lr, corpus=args.corpus,
                            progress=not args.quiet)
    for r in rec["requests"][:20]:
        q = r["request"]
        print(f"{q['prompt'].replace('{}', q['subject'], 1)!r} {q['target_true']!r} → "
              f"{'(removed)' if rec['remove'] else repr(q['target_new'])}: {r['statements_changed']} statement(s) in "
              f"{r['documents']} document(s); index count {r['index_count_before']} → {r['index_count_after']}")
    if len(rec["requests"]) > 20:
        print(f"... {len(rec['requests']) - 20} more in {args.out}/source_edit.json")
    tr = rec["training"]
    print(f"changed {rec['statements_changed']} statement(s) in {rec['documents_changed']} document(s) "
          f"({rec['documents_removed']} removed whole); documents differing in the shards: "
          f"{rec['documents_differing_in_shards']} (only the corrected ones); old statements left: "
          f"{rec['index_count_after']}")
    loss = "-" if tr["last_val_loss"] is None else f"{tr['last_val_loss']:.4f}"
    print(f"{'retrained' if rec['mode'] == 'retrain' else 'continued'} {tr['steps']} steps "
          f"({tr['wall_seconds']:.0f} s, {tr['flops'] or 0:.3g} FLOPs), val loss {loss} → {args.out}")
    return 0


# ============================================ instruction tuning: instruction-set / finetune --instructions / sample ===
def add_instruction_set_parser(sub) -> None:
    p = sub.add_parser("instruction-set", help="write a world's instruction set (JSONL) for instruction tuning",
                       description="Read a world directory (only read) and write instruction → response examples "
                                   "about it: train.jsonl for tuning, heldout_phrasings.jsonl, seen_phrasings.jsonl "
                                   "and heldout_type.jsonl for evaluation, info.json. Same bytes for the same "
                                   "arguments. See docs/instruction-tuning.md.")
    p.add_argument("world_dir", metavar="WORLD_DIR", help="world directory (lmlab world --out DIR)")
    p.add_argument("--out", required=True, metavar="DIR", help="directory to write (new, empty, or an instruction set)")
    p.add_argument("--heldout-type", default="current_value", metavar="TYPE",
                   help="instruction type kept out of train.jsonl (default current_value; also fact_question, "
                        "arithmetic, unscramble, reverse, sentiment)")
    p.add_argument("--seed", type=int, default=0, help="seed of the item splits and draws (default 0)")
    p.set_defaults(func=cmd_instruction_set)


def cmd_instruction_set(args) -> int:
    from lmlab.world import instruction_set

    summary = instruction_set(args.world_dir, args.out, heldout_type=args.heldout_type, seed=args.seed)
    for stem, counts in summary["counts"].items():
        print(f"{args.out}/{stem}.jsonl: {sum(counts.values())} examples "
              f"({', '.join(f'{k} {v}' for k, v in counts.items())})")
    return 0


def add_instruction_tuning_options(f) -> None:
    """The --instructions options of `lmlab finetune`; called from add_classifier_parsers."""
    f.add_argument("--instructions", default=None, metavar="FILE.jsonl",
                   help="instruction-tune the GPT of RUN_DIR on {instruction, input?, response} lines")
    f.add_argument("--replay", type=float, default=0.0, metavar="SHARE",
                   help="with --instructions: share of training documents taken from pre-training text, in [0, 1) "
                        "(default 0)")
    f.add_argument("--replay-data", default=None, metavar="DATA_DIR",
                   help="shards to replay (default: the shards RUN_DIR was trained on)")
    f.add_argument("--resume", action="store_true",
                   help="continue the instruction tuning in --out (e.g. with a larger --max_iters)")


def add_instruction_sample_options(p) -> None:
    """The --instruction options of `lmlab sample`; called from add_generation_parsers."""
    p.add_argument("--instruction", default=None, metavar="TEXT",
                   help="an instruction, put into the run's prompt template (instruction-tuned runs); prints "
                        "the response")
    p.add_argument("--input", dest="instruction_input", default="", metavar="TEXT",
                   help="with --instruction: the input the instruction works on (e.g. a review)")


def sample_options(args) -> dict:
    """The decoding options of `lmlab sample` as `generate` keyword arguments."""
    return dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_k=args.top_k,
                top_p=args.top_p, num_beams=args.beam, length_penalty=args.length_penalty, stop=args.stop,
                seed=args.seed, truncate=args.truncate)


def sample_instruction(run, args) -> int:
    """`lmlab sample RUN --instruction TEXT [--input TEXT]`: the response of an instruction-tuned run."""
    import json

    from lmlab.data.instructions import load_template
    from lmlab.generation import generate, stream

    if args.prompt:
        raise LmlabError("give either --prompt or --instruction, not both")
    template = load_template(args.run_dir)
    if template is None:
        raise LmlabError(f"{args.run_dir} has no prompt template (it was not instruction-tuned with `lmlab finetune "
                         "--instructions`); use --prompt")
    prompt = template.prompt(args.instruction, args.instruction_input)
    options = sample_options(args)
    if args.stream:
        for piece in stream(run.model, run.tokenizer, prompt, **options):
            print(piece, end="", flush=True)
        print()
        return 0
    [c] = generate(run.model, run.tokenizer, prompt, return_logprobs=args.json, **options)
    if args.json:
        print(json.dumps(c.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(c.text.removeprefix(template.response_prefix))
    return 0


def add_eval_instructions_parser(esub) -> None:
    """`lmlab eval instructions`; called from add_eval_parser."""
    e = esub.add_parser("instructions", help="exact-match accuracy per instruction type (zero/few-shot)",
                        description="Greedy answers of a run to instruction JSONL files, scored by exact match per "
                                    "instruction type. A run with a prompt template (lmlab finetune --instructions) "
                                    "is asked with it, a base run with the plain prompt; --shots 5 prepends five "
                                    "solved items of the same type (lmlab eval's few-shot prompts).")
    e.add_argument("run_dir", metavar="RUN_DIR", help="run dir")
    e.add_argument("--data", required=True, nargs="+", metavar="FILE.jsonl", help="instruction file(s)")
    e.add_argument("--shots", default="0", help="shot counts, e.g. 0 or 0,5 (default 0)")
    e.add_argument("--prompt", default="auto", choices=["auto", "template", "plain"],
                   help="auto: the run's template if it has one, else plain (default)")
    e.add_argument("--limit", type=int, default=None, metavar="N", help="first N items of each type")
    e.add_argument("--batch-size", type=int, default=16, metavar="N", help="prompts per batch (default 16)")
    e.add_argument("--seed", type=int, default=1234, help="few-shot draws and bootstrap (default 1234)")
    e.add_argument("--out", default=None, metavar="FILE.json",
                   help="results JSON (default RUN_DIR/eval/instructions.json); items beside it")
    e.add_argument("--json", action="store_true", help="print the results as JSON")
    e.add_argument("--device", default="cpu", help="torch device (default cpu)")
    e.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    e.set_defaults(func=cmd_eval_instructions)


def cmd_eval_instructions(args) -> int:
    import json
    from pathlib import Path

    from lmlab.evaluation import format_table, items_path
    from lmlab.evaluation.instructions import eval_instructions

    out = Path(args.out) if args.out else Path(args.run_dir) / "eval" / "instructions.json"
    report = eval_instructions(args.run_dir, args.data, shots=args.shots, prompt=args.prompt, limit=args.limit,
                               batch_size=args.batch_size, seed=args.seed, out=out, device=args.device,
                               progress=args.progress)
    if args.json:
        print(json.dumps(report["results"], indent=2))
    else:
        print(format_table(report))
        print(f"results: {out}  items: {items_path(out)}")
    return 0


# ================================================== weight storage: --weights on every verb that decodes or scores ===
def add_weights_argument(p) -> None:
    """`--weights fp32|bf16|int8` (lmlab.generation.set_weight_storage) on a verb that decodes or scores. The value
    is checked by the library (an unknown one is a one-line error), so building the parser imports no torch."""
    p.add_argument("--weights", default="fp32", metavar="fp32|bf16|int8",
                   help="how the Linear weights are held while decoding and scoring on CPU: fp32 (default, as "
                        "trained), bf16 (half the bytes) or int8 (a quarter, per-channel scales); fewer bytes, "
                        "faster decoding, slightly different numbers (docs/generation.md, 'Weight storage')")


# ======================================================================================================== main ===
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmlab", description="lmlab: train, sample, evaluate, inspect and edit small language models.")
    parser.add_argument("--version", action="version", version=f"lmlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_world_parser(sub)
    add_tokenizer_parser(sub)
    add_data_parser(sub)
    add_train_parser(sub)
    add_recipes_parser(sub)
    add_generation_parsers(sub)
    add_eval_parser(sub)
    add_hub_parsers(sub)
    add_inspection_parsers(sub)
    add_editing_parsers(sub)
    add_embed_parsers(sub)
    add_classifier_parsers(sub)
    add_translate_parser(sub)
    add_fill_parser(sub)
    add_serve_parser(sub)
    add_attribution_parsers(sub)
    add_plan_parser(sub)
    add_instruction_set_parser(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line a user can read (`lmlab: warning: ...`), not Python's file:line form with source."""
    kind = "" if category is UserWarning else f"{category.__name__}: "
    print(f"lmlab: warning: {kind}{message}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmlab` console script; returns the process exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    for arg in argv:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8, kept by Python as lone surrogates
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            print(f"lmlab: error: the argument {shown!r} is not valid UTF-8 text; lmlab reads arguments as UTF-8 "
                  "(check the terminal's encoding, e.g. LANG=C.UTF-8)", file=sys.stderr)
            return 2
    # `lmlab train` accepts free-form `--key value` config overrides, which argparse cannot know in advance.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    warnings.showwarning = _show_warning
    try:
        return int(args.func(args) or 0)
    except LmlabError as e:
        print(f"lmlab: error: {e}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as e:
        # Where a path the user gave cannot be written or read as asked (a read-only --out, a file where a
        # directory is needed): the OS says which path and why, in one line.
        print(f"lmlab: error: {e.strerror}: {e.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `lmlab ... | head` closed our stdout early: not an error. Point stdout at devnull so the interpreter's
        # final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
