"""Subject location (character offsets → token span) and the object's token, across tokenizer kinds."""

import pytest

from lmlab.errors import LmlabError
from lmlab.inspection import locate_subject, target_token
from lmlab.tokenization import CharTokenizer, WordTokenizer

from .conftest import TEXTS


def check_span(tok, prompt, subject):
    span = locate_subject(tok, prompt, subject)
    covered = tok.decode(span.ids[span.start: span.end])
    assert subject in covered  # the span covers the subject ...
    assert subject not in tok.decode(span.ids[span.start + 1: span.end])  # ... and no more than needed
    assert subject not in tok.decode(span.ids[span.start: span.end - 1])
    return span


@pytest.mark.parametrize("prompt,subject", [
    ("The capital of Lysaria is", "Lysaria"),
    ("The capital of {} is", "Lysaria"),
    ("Fefryrovia borders Lysaria", "Fefryrovia"),     # subject first
    ("Alice plays the violin", "ice pla"),             # starts and ends inside tokens
    ("The capital of Spain is", "is"),                 # last token; first occurrence wins ('is' in nothing before)
])
def test_subject_span_bpe(bpe_tok, prompt, subject):
    span = check_span(bpe_tok, prompt, subject)
    assert span.text == prompt.replace("{}", subject)


def test_subject_span_char_and_word():
    char = CharTokenizer.train(TEXTS)
    span = check_span(char, "The capital of Spain is", "Spain")
    assert (span.start, span.end) == (15, 20)
    word = WordTokenizer.train(TEXTS)
    span = check_span(word, "the capital of {} is", "Fefryrovia")
    assert span.end - span.start == 1


def test_subject_errors(bpe_tok):
    with pytest.raises(LmlabError, match="not in the prompt"):
        locate_subject(bpe_tok, "The capital of Spain is", "France")
    with pytest.raises(LmlabError, match="subject is empty"):
        locate_subject(bpe_tok, "The capital of {} is", "")
    with pytest.raises(LmlabError, match="target is empty"):
        target_token(bpe_tok, " ")


def test_target_token_in_context():
    word = WordTokenizer.train(["the capital of Spain is Madrid ."])
    # implicit spaces: the next token after the prompt is the word itself, not a space token
    assert word.decode([target_token(word, "Madrid", "the capital of Spain is")]) == "Madrid"
