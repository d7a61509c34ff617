"""The types of the table the CLI is built from (lmlab.cli.main.VERBS). A `Verb` is one command: its name, the
public Python function it calls (named in its --help), a function adding its options, and its handler, which
calls that function and prints the result; the handler's docstring is the verb's help (first line: the summary
`lmlab --help` lists; the rest: the description). A `Group` is a command whose sub-commands are Verbs
(`lmlab eval ppl`). An entry of the table may also be a plain function that adds its own parser (`train`)."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

Entry = Callable[[Any], Any]  # called with argparse's sub-parsers object; adds one command to it


@dataclass(frozen=True)
class Verb:
    """One command: `lmlab NAME ...` (or `lmlab GROUP NAME ...`)."""

    name: str
    python: str                                   # the public function it calls, e.g. lmlab.world.generate_world
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]      # handler: call `python`, print, return the exit status
    usage: str | None = None
    epilog: str | None = None
    accepts_overrides: bool = False               # free-form `--key value` settings after the options

    @property
    def help(self) -> str:
        """The handler's docstring's first paragraph."""
        return _paragraphs(self.run)[0]

    @property
    def description(self) -> str:
        """The handler's docstring after its first paragraph, then the Python function it calls."""
        return " ".join(_paragraphs(self.run)[1:] + [f"Python: {self.python}"])

    def __call__(self, sub) -> argparse.ArgumentParser:
        extra = {k: v for k, v in (("usage", self.usage), ("epilog", self.epilog)) if v is not None}
        p = sub.add_parser(self.name, help=self.help, description=self.description, **extra)
        self.add_arguments(p)
        p.set_defaults(func=self.run, **({"accepts_overrides": True} if self.accepts_overrides else {}))
        return p


@dataclass(frozen=True)
class Group:
    """A command whose first argument picks a sub-command: `lmlab NAME VERB ...`."""

    name: str
    help: str
    dest: str                      # the Namespace attribute naming the chosen sub-command
    verbs: Sequence[Verb]
    metavar: str | None = None     # how --help lists the sub-commands (default {a,b,c} in table order)
    description: str | None = None

    def __call__(self, sub) -> argparse.ArgumentParser:
        p = sub.add_parser(self.name, help=self.help,
                           **({"description": self.description} if self.description else {}))
        metavar = self.metavar or "{" + ",".join(v.name for v in self.verbs) + "}"
        add_entries(p.add_subparsers(dest=self.dest, required=True, metavar=metavar), self.verbs)
        return p


def _paragraphs(fn: Callable) -> list[str]:
    """The paragraphs of `fn`'s docstring, each on one line (argparse re-wraps them anyway)."""
    doc = inspect.getdoc(fn) or ""
    return [" ".join(par.split()) for par in doc.split("\n\n") if par.strip()] or [""]


def no_arguments(p) -> None:
    """The options of a verb that takes none."""


def add_entries(sub, entries: Sequence[Entry]) -> None:
    """Add each entry of the table to argparse's sub-parsers, in order (the order --help lists them in)."""
    for entry in entries:
        entry(sub)
