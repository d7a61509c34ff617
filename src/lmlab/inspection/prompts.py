"""Prompts as tokens: encoding, readable token labels, the token span of a subject, the target's token id.

Prompts are used as given, nothing prepended (as `lmlab.generation` does), so what inspection reads is what
`lmlab sample` continues.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer


def encode_prompt(tokenizer: Tokenizer, prompt: str, block_size: int | None = None) -> list[int]:
    """Token ids of `prompt`; LmlabError when it is empty or longer than the model's context."""
    if not prompt:
        raise LmlabError("the prompt is empty; give some text with --prompt")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise LmlabError(f"prompt {prompt!r} encodes to no tokens")
    if block_size is not None and len(ids) > block_size:
        raise LmlabError(f"prompt is {len(ids)} tokens, longer than the model's context of {block_size}; shorten it")
    return ids


def token_labels(tokenizer: Tokenizer, ids) -> list[str]:
    """The text of each token on its own (for axis labels and reports)."""
    return [tokenizer.decode([int(i)]) for i in ids]


def token_char_spans(tokenizer: Tokenizer, ids: list[int]) -> tuple[str, list[tuple[int, int]]]:
    """(decoded text, [(start, end) character span of each token in it]).

    Spans come from decoding growing prefixes, so a token that only completes a character together with the
    next one (a split UTF-8 sequence) still gets a consistent span.
    """
    spans, prev = [], 0
    for i in range(len(ids)):
        n = len(tokenizer.decode(ids[: i + 1]))
        spans.append((prev, max(prev, n)))
        prev = max(prev, n)
    return tokenizer.decode(ids), spans


def fill_prompt(prompt: str, subject: str) -> str:
    """'The capital of {} is' + subject → the filled prompt; a prompt without '{}' is returned as is."""
    return prompt.replace("{}", subject, 1) if "{}" in prompt else prompt


@dataclass
class SubjectSpan:
    """A prompt's tokens and the token range [start, end) that covers the subject's characters."""

    text: str
    ids: list[int]
    start: int
    end: int


def locate_subject(tokenizer: Tokenizer, prompt: str, subject: str, block_size: int | None = None) -> SubjectSpan:
    """Encode `prompt` (with '{}' filled by `subject`, or containing it verbatim) and find the tokens covering
    the subject: every token whose characters overlap the subject's characters (first occurrence, or the '{}'
    slot). Works from character offsets, so subjects that start or end inside a token are covered too.

    Raises LmlabError when the subject is empty or not in the prompt.
    """
    if not subject or not subject.strip():
        raise LmlabError("the subject is empty; give the words of the prompt to corrupt, e.g. --subject 'Paris'")
    if "{}" in prompt:
        char_start = prompt.index("{}")
        text = fill_prompt(prompt, subject)
    else:
        text = prompt
        char_start = text.find(subject)
        if char_start < 0:
            raise LmlabError(f"subject {subject!r} is not in the prompt {prompt!r}; the subject must appear in the "
                             "prompt verbatim (or write the prompt with '{}' where the subject goes)")
    char_end = char_start + len(subject)
    ids = encode_prompt(tokenizer, text, block_size)
    decoded, spans = token_char_spans(tokenizer, ids)
    if decoded != text:
        # The tokenizer does not round-trip this text (e.g. <unk>): find the subject in what it decodes to.
        offset = decoded.find(subject)
        if offset < 0:
            raise LmlabError(f"subject {subject!r} cannot be found in the tokenized prompt {decoded!r} "
                             "(the tokenizer changes its characters)")
        char_start, char_end = offset, offset + len(subject)
    covering = [i for i, (a, b) in enumerate(spans) if a < char_end and b > char_start]
    if not covering:
        raise LmlabError(f"subject {subject!r} covers no token of the prompt {text!r}")
    return SubjectSpan(text=text, ids=ids, start=covering[0], end=covering[-1] + 1)


def target_token(tokenizer: Tokenizer, target: str, prompt: str | None = None) -> int:
    """The id of the object's first token: the token the model must predict right after `prompt` to go on with
    ' ' + target (a leading space is added unless present), as in ROME.

    With `prompt`, it is read in context: the first token of encode(prompt + ' ' + target) after the prompt's own
    tokens, so tokenizers with implicit spaces (word) or separate space tokens get the token they really emit.
    Without it (or when the prompt's tokens change in context), the first token of encode(' ' + target).
    """
    if not target or not target.strip():
        raise LmlabError("the target is empty; give the expected continuation, e.g. --target Paris")
    spaced = target if target[0].isspace() else " " + target
    if prompt is not None:
        head = tokenizer.encode(prompt)
        full = tokenizer.encode(prompt + spaced)
        if len(full) > len(head) and full[: len(head)] == head:
            return full[len(head)]
    ids = tokenizer.encode(spaced)
    if not ids:
        raise LmlabError(f"target {target!r} encodes to no tokens")
    return ids[0]
