"""Which sentences of a corpus state an edit request's old fact, and how a document reads once they are corrected.

A request {prompt "The capital of {} is", subject "Vorland", target_true "Kesta", target_new "Gutaiholm"} is
stated by the text "The capital of Vorland is Kesta" wherever it stands as words of its own (no letter or digit
right before it or right after it: "Kestaville" is another word). The prompts that count as stating it are the
request's own prompt and paraphrase prompts and, when the prompt is one of the world's relation templates
(lmlab.world.relations), every train and held-out template of that relation: the training templates and the
paraphrases. A temporal relation's past-tense templates ("In 2019, the leader of {s} was {o}.") are not
statements of the old fact but true history, and stay.

Correcting a document rewrites each statement to the new object (the prompt part stays as written) or, with
`remove`, drops the sentence (the statement, the full stop after it, and one space).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lmlab.editing.requests import EditRequest
from lmlab.errors import LmlabError
from lmlab.world.relations import RELATIONS, to_prompt


def relation_prompts(prompt: str) -> list[str]:
    """The train and held-out prompts ("The capital of {} is") of the world relation that has `prompt` among
    them; [] when no relation has it."""
    for rel in RELATIONS:
        prompts = [to_prompt(t) for t in rel.train + rel.heldout]
        if prompt in prompts:
            return prompts
    return []


def statement_prompts(request: EditRequest) -> list[str]:
    """Filled prompts ("The capital of Vorland is") after which `request.target_true` states the old fact:
    the request's prompt, its paraphrase prompts, and its world relation's train and held-out templates."""
    prompts = [request.prompt, *request.paraphrase_prompts, *relation_prompts(request.prompt)]
    filled = [p.replace("{}", request.subject, 1) if "{}" in p else p for p in prompts]
    return list(dict.fromkeys(filled))


@dataclass
class StatementPattern:
    """The statements of one request's old fact: `texts` ("The capital of Vorland is Kesta", one per prompt)
    and one regex that finds any of them as whole words (the longest first, so overlapping ones count once).
    A match's group "prefix" is the prompt part that a rewrite keeps."""

    request: EditRequest
    texts: list[str]
    regex: re.Pattern

    @classmethod
    def of(cls, request: EditRequest) -> "StatementPattern":
        if not request.target_true:
            raise LmlabError(f"edit request {request.case_id if request.case_id is not None else request.prompt!r}"
                             " has no target_true: correcting the source needs the old object to find where the "
                             "text states it (add target_true to the request)")
        prefixes = sorted(statement_prompts(request), key=len, reverse=True)
        body = "|".join(re.escape(p) for p in prefixes)
        regex = re.compile(rf"(?<!\w)(?P<prefix>{body}) {re.escape(request.target_true)}(?!\w)")
        return cls(request, [f"{p} {request.target_true}" for p in prefixes], regex)


@dataclass
class Correction:
    """What correcting one document did: the corrected text and how many statements of each request (by
    position in the request list) it changed."""

    text: str
    counts: dict[int, int]


def correct_text(text: str, patterns: list[StatementPattern], *, remove: bool = False) -> Correction:
    """`text` with every statement of each pattern's old fact rewritten to its new object (or removed); the
    patterns are applied in order, each to the result of the one before."""
    counts: dict[int, int] = {}
    for i, pat in enumerate(patterns):
        n = 0
        if remove:
            text, n = _remove_sentences(text, pat.regex)
        else:
            new = pat.request.target_new
            text, n = pat.regex.subn(lambda m: f"{m.group('prefix')} {new}", text)
        if n:
            counts[i] = n
    return Correction(text, counts)


def _remove_sentences(text: str, regex: re.Pattern) -> tuple[str, int]:
    """`text` without the matches of `regex`, each taken with a full stop right after it and one space (after it,
    else before it), so "A. B. C." less "B" reads "A. C."; returns (text, matches removed)."""
    out, pos, n = [], 0, 0
    for m in regex.finditer(text):
        start, end = m.start(), m.end()
        if end < len(text) and text[end] == ".":
            end += 1
        if end < len(text) and text[end] == " ":
            end += 1
        elif start > pos and text[start - 1] == " ":
            start -= 1
        out.append(text[pos:start])
        pos = end
        n += 1
    out.append(text[pos:])
    return "".join(out), n
