"""Command-line tool: a table of verbs (lmlab.cli.main.VERBS), each a thin wrapper that parses arguments, calls one
public Python function of the packages (named in the verb's --help) and prints its result with that package's
formatter, so a notebook can do whatever the CLI does. Heavy imports (torch, tokenizers) happen inside the
handlers so `lmlab --help` stays instant. User mistakes raise `LmlabError`, printed on one line with exit 2.

One module per verb group: data (world, tokenizer, data), train, generation (sample, score, translate, fill),
evaluation (the eval group), hub (import, export), inspection (inspect, locate), editing (edit), models (embed,
finetune, classify, instruction-set), serving (serve), attribution (attribute), plan; verbs.py holds the table's
types and options.py the options several verbs share.
"""

from lmlab.cli.main import build_parser, main

__all__ = ["main", "build_parser"]
