"""Command-line tool: argument parsing and printing only.

Every verb is a thin wrapper over a public Python function with the same name and arguments (see
ARCHITECTURE.md), so a notebook can do whatever the CLI does. Heavy imports (torch, tokenizers) happen inside the
handlers so `lmlab --help` stays instant. User mistakes raise `LmlabError`, printed here on one line with exit 2.

Layout of this file: one section per verb group, each with `add_<group>_parser(sub)` and `cmd_<group>_<verb>(args)`.
"""

from __future__ import annotations

import argparse
import sys

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
    raise LmlabError("`lmlab world` is not implemented yet")


# =================================================================================================== tokenizer ===
def add_tokenizer_parser(sub) -> None:
    p = sub.add_parser("tokenizer", help="train and inspect tokenizers")
    tsub = p.add_subparsers(dest="tokenizer_cmd", required=True, metavar="{train,show}")
    t = tsub.add_parser("train", help="train a tokenizer on text files")
    t.set_defaults(func=cmd_tokenizer_train)
    s = tsub.add_parser("show", help="show how a text splits into tokens")
    s.set_defaults(func=cmd_tokenizer_show)


def cmd_tokenizer_train(args) -> int:
    raise LmlabError("`lmlab tokenizer train` is not implemented yet")


def cmd_tokenizer_show(args) -> int:
    raise LmlabError("`lmlab tokenizer show` is not implemented yet")


# ======================================================================================================== data ===
def add_data_parser(sub) -> None:
    p = sub.add_parser("data", help="turn text into token shards")
    dsub = p.add_subparsers(dest="data_cmd", required=True, metavar="{prepare,stats}")
    pr = dsub.add_parser("prepare", help="read, dedup, split and tokenize a corpus into shards")
    pr.set_defaults(func=cmd_data_prepare)
    st = dsub.add_parser("stats", help="summarise a shard directory")
    st.set_defaults(func=cmd_data_stats)


def cmd_data_prepare(args) -> int:
    raise LmlabError("`lmlab data prepare` is not implemented yet")


def cmd_data_stats(args) -> int:
    raise LmlabError("`lmlab data stats` is not implemented yet")


# ======================================================================================================= train ===
def add_train_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (no arguments: the tiny GPT on the built-in world)")
    p.set_defaults(func=cmd_train)


def cmd_train(args) -> int:
    raise LmlabError("`lmlab train` is not implemented yet")


# ================================================================================== generation: sample / score ===
def add_generation_parsers(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a run dir")
    p.set_defaults(func=cmd_sample)
    s = sub.add_parser("score", help="log-probabilities of a text under a run dir's model")
    s.set_defaults(func=cmd_score)


def cmd_sample(args) -> int:
    raise LmlabError("`lmlab sample` is not implemented yet")


def cmd_score(args) -> int:
    raise LmlabError("`lmlab score` is not implemented yet")


# ======================================================================================================== eval ===
def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a model")
    esub = p.add_subparsers(dest="eval_cmd", required=True, metavar="{ppl}")
    pp = esub.add_parser("ppl", help="perplexity and bits-per-byte on shards or a text file")
    pp.set_defaults(func=cmd_eval_ppl)


def cmd_eval_ppl(args) -> int:
    raise LmlabError("`lmlab eval ppl` is not implemented yet")


# ============================================================================================ hub: import/export ===
def add_hub_parsers(sub) -> None:
    i = sub.add_parser("import", help="import a model from another library's files (local only)")
    isub = i.add_subparsers(dest="import_cmd", required=True, metavar="{hf-gpt2}")
    ih = isub.add_parser("hf-gpt2", help="Hugging Face GPT-2 directory → run dir")
    ih.set_defaults(func=cmd_import_hf_gpt2)
    e = sub.add_parser("export", help="export a run dir to another library's format")
    esub = e.add_subparsers(dest="export_cmd", required=True, metavar="{hf-gpt2}")
    eh = esub.add_parser("hf-gpt2", help="run dir → Hugging Face GPT-2 directory")
    eh.set_defaults(func=cmd_export_hf_gpt2)


def cmd_import_hf_gpt2(args) -> int:
    raise LmlabError("`lmlab import hf-gpt2` is not implemented yet")


def cmd_export_hf_gpt2(args) -> int:
    raise LmlabError("`lmlab export hf-gpt2` is not implemented yet")


# ======================================================================================================== main ===
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lmlab", description="lmlab: train, sample, evaluate, inspect and edit small language models.")
    parser.add_argument("--version", action="version", version=f"lmlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_world_parser(sub)
    add_tokenizer_parser(sub)
    add_data_parser(sub)
    add_train_parser(sub)
    add_generation_parsers(sub)
    add_eval_parser(sub)
    add_hub_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `lmlab` console script; returns the process exit status."""
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    # `lmlab train` accepts free-form `--key value` config overrides, which argparse cannot know in advance.
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return int(args.func(args) or 0)
    except LmlabError as e:
        print(f"lmlab: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lmlab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
