"""The verb table: every command's --help prints, names a public Python function that exists, and building the
parser imports no torch."""

import argparse
import importlib
import io
import re
import subprocess
import sys

from lmlab.cli.main import VERBS, build_parser
from lmlab.cli.verbs import Group, Verb


def _parsers(parser, path=("lmlab",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def _verbs(entries):
    for entry in entries:
        if isinstance(entry, Group):
            yield from _verbs(entry.verbs)
        elif isinstance(entry, Verb):
            yield entry


def test_every_help_prints():
    paths = []
    for path, parser in _parsers(build_parser()):
        parser.print_help(io.StringIO())
        paths.append(" ".join(path))
    assert {"lmlab eval ppl", "lmlab eval tasks", "lmlab embed analogy", "lmlab attribute trace"} <= set(paths)


def test_each_verb_names_a_function_that_exists_and_has_a_summary():
    for verb in _verbs(VERBS):
        assert verb.help and f"Python: {verb.python}" in verb.description, verb.name
        for dotted in re.findall(r"lmlab(?:\.\w+)+", verb.python):
            module, _, name = dotted.rpartition(".")
            assert callable(getattr(importlib.import_module(module), name)), dotted


def test_the_parser_imports_no_torch():
    code = "import sys, lmlab.cli; lmlab.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
