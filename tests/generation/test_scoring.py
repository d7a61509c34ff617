"""Scoring: text log-likelihood convention, windows, continuation scores, perplexity and bits-per-byte."""

import math

import numpy as np
import pytest
import torch

from lmlab.generation import (generate, perplexity, score_continuation, score_continuations, score_text,
                              text_perplexity, token_logprobs)


def full_logprobs(model, ids):
    """log p(ids[i] | ids[:i]) for i >= 1 from one forward pass."""
    lp = model(torch.tensor([ids]))[0][0].log_softmax(-1)
    return [lp[i - 1, t].item() for i, t in enumerate(ids) if i > 0]


def test_score_text_convention(trained):
    model, tok = trained
    s = score_text(model, tok, "the mat")
    ids = [tok.eos_id] + tok.encode("the mat") + [tok.eos_id]
    assert s.tokens == ids[1:] and s.n_tokens == 8
    assert s.token_logprobs == pytest.approx(full_logprobs(model, ids), abs=1e-5)
    assert s.total_logprob == pytest.approx(sum(s.token_logprobs))
    prefix = score_text(model, tok, "the mat", add_eos=False)
    assert prefix.tokens == ids[1:-1] and prefix.token_logprobs == pytest.approx(s.token_logprobs[:-1], abs=1e-5)


def test_learned_sentence_is_likelier_than_scrambled(trained):
    model, tok = trained
    assert score_text(model, tok, "the cat sat on the mat.").total_logprob > \
        score_text(model, tok, "mat the on sat cat the.").total_logprob + 20


def test_long_text_is_scored_in_windows(trained):
    model, tok = trained  # block_size 32
    text = "the cat sat on the mat. " * 4  # 96 chars + eos: longer than the context
    s = score_text(model, tok, text)
    assert s.n_tokens == len(tok.encode(text)) + 1
    assert all(math.isfinite(x) for x in s.token_logprobs)
    # the first window's tokens are scored exactly as by one forward pass
    ids = [tok.eos_id] + tok.encode(text)
    assert s.token_logprobs[:31] == pytest.approx(full_logprobs(model, ids[:32]), abs=1e-5)


def test_windows_score_each_token_once_with_full_context(trained):
    model, _ = trained
    tokens = np.random.default_rng(0).integers(4, 20, size=50)
    lp = token_logprobs(model, tokens, block_size=16)
    assert lp.shape == (49,)
    # position 20 lies in window [16, 32): context tokens[16:20]; position 49 in the last window [33, 49)
    for pos, start in ((20, 16), (49, 33), (5, 0)):
        ref = full_logprobs(model, [int(t) for t in tokens[start:pos + 1]])[-1]
        assert lp[pos - 1].item() == pytest.approx(ref, abs=1e-5)


def test_perplexity_fields(trained):
    model, tok = trained
    tokens = np.array(tok.encode(("the cat sat on the mat.<eos>") * 5), dtype=np.uint16)
    r = perplexity(model, tokens, batch_size=3, text_bytes=5 * 23)
    assert r["n_tokens"] == len(tokens) - 1
    assert r["ppl"] == pytest.approx(math.exp(r["loss_nats"]))
    assert r["bits_per_token"] == pytest.approx(r["loss_nats"] / math.log(2))
    assert r["bits_per_byte"] == pytest.approx(r["loss_nats"] * r["n_tokens"] / math.log(2) / (5 * 23))
    assert r["ppl"] < 2.0  # the model learned this text
    overlapping = perplexity(model, tokens, stride=8)
    assert overlapping["n_tokens"] == r["n_tokens"]


def test_text_perplexity_matches_score_text_on_short_text(trained):
    model, tok = trained
    r = text_perplexity(model, tok, "the cat")
    s = score_text(model, tok, "the cat")
    assert r["loss_nats"] == pytest.approx(-s.total_logprob / s.n_tokens, abs=1e-6)
    assert r["bits_per_byte"] == pytest.approx(-s.total_logprob / math.log(2) / 7, abs=1e-6)


def test_score_continuations(trained):
    model, tok = trained
    pairs = [("the cat", " sat"), ("the", " dog"), ("", "the"), ("the cat sat on the", " mat."), ("x", "")]
    batched = score_continuations(model, tok, pairs, batch_size=2)
    for (ctx, cont), (lp, greedy) in zip(pairs, batched):
        single = score_continuation(model, tok, ctx, cont)
        assert lp == pytest.approx(single[0], abs=1e-4) and greedy == single[1]
        if cont:
            ctx_ids = tok.encode(ctx) or [tok.eos_id]
            ids = ctx_ids + tok.encode(cont)
            assert lp == pytest.approx(sum(full_logprobs(model, ids)[len(ctx_ids) - 1:]), abs=1e-4)
    assert batched[0][1] and batched[3][1] and not batched[1][1]
    assert batched[4] == (0.0, True)
    greedy_text = generate(model, tok, "the cat sat", max_new_tokens=5, temperature=0)[0].text
    assert score_continuation(model, tok, "the cat sat", greedy_text)[1]


def test_one_token_choices_after_one_context_share_a_row(trained):
    # Multiple-choice answers of one token after the same context need one forward row, not one each
    # (lm-evaluation-harness does the same); the scores are those of scoring each pair alone.
    model, tok = trained
    pairs = [("the cat sat on the", c) for c in (" ", "m", "x", "t")] + [("the", " mat.")]
    rows = []
    handle = model.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[0]))
    try:
        shared = score_continuations(model, tok, pairs, batch_size=8)
    finally:
        handle.remove()
    assert rows == [2]
    for (ctx, cont), (lp, greedy) in zip(pairs, shared):
        alone = score_continuation(model, tok, ctx, cont)
        assert lp == pytest.approx(alone[0], abs=1e-5) and greedy == alone[1]


def test_prompt_logprobs_agree_with_token_logprobs_and_continuation_scores(trained):
    from lmlab.generation import prompt_logprobs

    model, tok = trained
    ctx, cont = tok.encode("the cat"), tok.encode(" sat on")
    chosen, top = prompt_logprobs(model, ctx + cont, top=3)
    assert chosen == pytest.approx(token_logprobs(model, ctx + cont).tolist(), abs=1e-5)
    assert sum(chosen[len(ctx) - 1:]) == pytest.approx(score_continuation(model, tok, "the cat", " sat on")[0], abs=1e-4)
    assert len(top) == len(chosen) and all(len(t) == 3 and t[0][1] >= t[2][1] for t in top)
    assert all(max(v for _, v in t) >= c - 1e-6 for t, c in zip(top, chosen))
    assert prompt_logprobs(model, ctx[:1]) == ([], [])
