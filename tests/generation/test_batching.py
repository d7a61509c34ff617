"""Continuous batching: sequences that join and leave between steps get exactly what they get decoded alone."""

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.generation import generate
from lmlab.generation.batching import BatchedDecoder
from lmlab.models import GPT, GPTConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_model(vocab_size, **kw):
    torch.manual_seed(0)
    cfg = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=vocab_size)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def drain(decoder, joins=None):
    """Step until every sequence finished; joins: {step: [(prompt_ids, options)]} added before that step.
    Returns {seq_id: [events]}."""
    joins = dict(joins or {})
    out, step = {}, 0
    while decoder.active or joins:
        for ids, opts in joins.pop(step, []):
            decoder.add(ids, **opts)
        for e in decoder.step():
            out.setdefault(e.seq_id, []).append(e)
        step += 1
    return out


@pytest.mark.parametrize("pos", ["learned", "rotary"])
def test_staggered_joins_match_decoding_alone(trained, pos):
    """Rows of different lengths, joining at different steps, leaving early (eos/length) and sliding the shared
    window past the cache's end, each get the tokens and log-probs of `generate` on their prompt alone."""
    _, tok = trained
    model = random_model(tok.vocab_size, pos_embedding=pos)
    prompts = ["the cat sat", "a", "on the mat and the", "t"]
    lengths = [15, 9, 6, 20]
    joins = {0: [(tok.encode(prompts[0]), dict(max_new_tokens=lengths[0], temperature=0, top_logprobs=3))],
             2: [(tok.encode(prompts[1]), dict(max_new_tokens=lengths[1], temperature=0))],
             5: [(tok.encode(prompts[2]), dict(max_new_tokens=lengths[2], temperature=0)),
                 (tok.encode(prompts[3]), dict(max_new_tokens=lengths[3], temperature=0))]}
    decoder = BatchedDecoder(model, tok, max_rows=3)  # the 4th waits for a free row
    events = drain(decoder, joins)
    for seq_id, (prompt, n) in enumerate(zip(prompts, lengths)):
        ref = generate(model, tok, prompt, max_new_tokens=n, temperature=0, return_logprobs=True)[0]
        got = events[seq_id]
        assert [e.token for e in got] == ref.tokens
        assert [e.logprob for e in got] == pytest.approx(ref.token_logprobs, abs=1e-4)
        assert got[-1].text == ref.text and got[-1].finish_reason == ref.finish_reason
        assert all(e.finish_reason is None for e in got[:-1])
    first = events[0][0]
    assert len(first.top) == 3 and first.top[0][1] >= first.top[1][1] >= first.top[2][1]
    assert first.top[0][1] == pytest.approx(first.logprob) or first.token != first.top[0][0]
    assert decoder.running == 0 and decoder.cache.length == 0


def test_seeded_sampling_matches_generate_and_copies_differ(trained):
    model, tok = trained
    ids = tok.encode("the")
    decoder = BatchedDecoder(model, tok, max_rows=4)
    decoder.add(ids, max_new_tokens=10, temperature=1.5, top_k=8, top_p=0.95, seed=7, copies=2)
    events = drain(decoder)
    ref = generate(model, tok, "the", max_new_tokens=10, temperature=1.5, top_k=8, top_p=0.95, seed=7)[0]
    assert [e.token for e in events[0]] == ref.tokens
    assert [e.token for e in events[0]] != [e.token for e in events[1]]  # copy 1 draws with seed 8


def test_stop_string_and_eos_end_rows(trained):
    model, tok = trained
    decoder = BatchedDecoder(model, tok)
    decoder.add(tok.encode("the cat"), max_new_tokens=20, temperature=0, stop=[" the"])
    decoder.add(tok.encode("the cat"), max_new_tokens=20, temperature=0)
    events = drain(decoder)
    assert events[0][-1].finish_reason == "stop" and events[0][-1].text == " sat on"
    assert events[1][-1].finish_reason == "eos" and events[1][-1].text == " sat on the mat."


def test_cancel_frees_the_row(trained):
    model, tok = trained
    decoder = BatchedDecoder(model, tok, max_rows=1)
    a, = decoder.add(tok.encode("the"), max_new_tokens=10, temperature=0)
    b, = decoder.add(tok.encode("the cat"), max_new_tokens=3, temperature=0)
    decoder.step()
    decoder.cancel(a)
    events = drain(decoder)
    assert set(events) == {b} and len(events[b]) == 3


def test_bad_requests_are_refused(trained):
    model, tok = trained
    decoder = BatchedDecoder(model, tok)
    with pytest.raises(LmlabError, match="context"):
        decoder.add([1] * 30, max_new_tokens=5)
    with pytest.raises(LmlabError, match="top_p"):
        decoder.add([1], max_new_tokens=5, top_p=0)
