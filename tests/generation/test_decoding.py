"""Decoding: greedy/sampling/beam behaviour, batching with padding, stop strings, eos, streaming, context limits."""

import itertools

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.generation import generate, stream
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization import BPETokenizer, CharTokenizer


def random_model(vocab_size, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=2, n_embd=32, block_size=48, vocab_size=vocab_size)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def naive_greedy(model, ids, n):
    """Reference: full forward pass over the whole sequence for every new token (no cache, no padding)."""
    ids = list(ids)
    for _ in range(n):
        logits, _ = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1, :model.vocab_limit].argmax()))
    return ids


@pytest.mark.parametrize("pos", ["learned", "sinusoidal", "rotary"])
def test_batched_greedy_with_padding_equals_naive_decoding(trained, pos):
    _, tok = trained
    model = random_model(tok.vocab_size, pos_embedding=pos)
    model.vocab_limit = tok.vocab_size
    prompts = ["the cat sat", "a", "on the mat"]
    outs = generate(model, tok, prompts, max_new_tokens=12, temperature=0)
    for prompt, out in zip(prompts, outs):
        ids = tok.encode(prompt)
        ref = naive_greedy(model, ids, len(out.tokens))
        assert out.tokens == ref[len(ids):]


def test_trained_model_continues_and_stops_at_eos(trained):
    model, tok = trained
    out = generate(model, tok, "the cat", max_new_tokens=20, temperature=0, return_logprobs=True)[0]
    assert out.text == " sat on the mat." and out.finish_reason == "eos"
    assert out.tokens[-1] == tok.eos_id and len(out.token_logprobs) == len(out.tokens)
    assert all(lp > -0.7 for lp in out.token_logprobs)  # a learned sentence is predicted confidently


def test_stop_string_cuts_text(trained):
    model, tok = trained
    out = generate(model, tok, "the cat", max_new_tokens=20, temperature=0, stop=[" the", "zzz"])[0]
    assert out.text == " sat on" and out.finish_reason == "stop"


def test_max_new_tokens_gives_length(trained):
    model, tok = trained
    out = generate(model, tok, "the cat", max_new_tokens=4, temperature=0)[0]
    assert out.text == " sat" and out.finish_reason == "length" and len(out.tokens) == 4


def test_logprobs_equal_full_forward(trained):
    model, tok = trained
    out = generate(model, tok, "the", max_new_tokens=6, temperature=0.9, seed=3, return_logprobs=True)[0]
    ids = tok.encode("the") + out.tokens
    logp = model(torch.tensor([ids]))[0][0].log_softmax(-1)
    expected = [logp[len(ids) - len(out.tokens) - 1 + i, t].item() for i, t in enumerate(out.tokens)]
    assert out.token_logprobs == pytest.approx(expected, abs=1e-4)


def test_seed_reproducible_and_sampling_varies(trained):
    _, tok = trained
    model = random_model(tok.vocab_size + 3)
    a = generate(model, tok, ["the", "cat"], max_new_tokens=15, seed=1)
    b = generate(model, tok, ["the", "cat"], max_new_tokens=15, seed=1)
    c = generate(model, tok, ["the", "cat"], max_new_tokens=15, seed=2)
    assert [x.tokens for x in a] == [x.tokens for x in b] != [x.tokens for x in c]
    assert all(t < tok.vocab_size for x in a + c for t in x.tokens)  # padded vocab ids never sampled


def test_top_k_1_and_tiny_top_p_are_greedy(trained):
    _, tok = trained
    model = random_model(tok.vocab_size)
    greedy = generate(model, tok, "the", max_new_tokens=10, temperature=0)[0].tokens
    assert generate(model, tok, "the", max_new_tokens=10, top_k=1, seed=5)[0].tokens == greedy
    assert generate(model, tok, "the", max_new_tokens=10, top_p=1e-6, seed=5)[0].tokens == greedy


def test_top_k_restricts_choices(trained):
    _, tok = trained
    model = random_model(tok.vocab_size)
    out = generate(model, tok, "t", max_new_tokens=1, top_k=3, seed=0, temperature=5.0)
    logits = model(torch.tensor([tok.encode("t")]))[0][0, -1, :tok.vocab_size]
    allowed = set(torch.topk(logits, 3).indices.tolist())
    for seed in range(20):
        tokens = generate(model, tok, "t", max_new_tokens=1, top_k=3, seed=seed, temperature=5.0)[0].tokens
        assert tokens[0] in allowed
    assert out


def test_prompt_too_long_error_and_left_truncation(trained):
    model, tok = trained  # block_size 32
    long_prompt = "the cat sat on the mat. the cat sat"
    with pytest.raises(LmlabError, match="truncate"):
        generate(model, tok, long_prompt, max_new_tokens=10)
    out = generate(model, tok, long_prompt, max_new_tokens=10, truncate="left", temperature=0)[0]
    assert out.prompt_tokens == tok.encode(long_prompt)[-22:]
    assert out.text == " on the ma"


def test_beam_search_finds_the_best_sequence(trained):
    """With as many beams as sequences of length 2, beam search over 3 tokens is exhaustive: compare."""
    tok = CharTokenizer(["a", "b", "c"], byte_fallback=False)  # ids 0..3 specials, 4..6 letters
    model = random_model(tok.vocab_size, seed=1)
    V, eos = tok.vocab_size, tok.eos_id
    out = generate(model, tok, "ab", max_new_tokens=3, num_beams=V * V, length_penalty=0.0, return_logprobs=True)[0]
    prompt = tok.encode("ab")
    best, best_seq = -float("inf"), None
    for n in (1, 2, 3):  # every hypothesis: 3 tokens without <eos>, or ending at its first <eos>
        seqs = [list(s) for s in itertools.product(range(V), repeat=n)
                if eos not in s[:-1] and (n == 3 or s[-1] == eos)]
        lp = model(torch.tensor([prompt + s for s in seqs]))[0].log_softmax(-1)
        for row, seq in zip(lp, seqs):
            total = sum(row[len(prompt) - 1 + i, t].item() for i, t in enumerate(seq))
            if total > best:
                best, best_seq = total, seq
    assert out.tokens == best_seq
    assert sum(out.token_logprobs) == pytest.approx(best, abs=1e-4)


def test_beam_search_on_trained_model(trained):
    model, tok = trained
    out = generate(model, tok, "the cat", max_new_tokens=20, num_beams=4)[0]
    assert out.text == " sat on the mat." and out.finish_reason == "eos"


def test_stream_pieces_join_to_generate_text(trained):
    model, tok = trained
    for kw in ({"temperature": 0}, {"temperature": 0, "stop": [" on"]}, {"seed": 4, "temperature": 1.5}):
        pieces = list(stream(model, tok, "the cat", max_new_tokens=20, **kw))
        assert "".join(pieces) == generate(model, tok, "the cat", max_new_tokens=20, **kw)[0].text
    assert len(list(stream(model, tok, "the cat", max_new_tokens=20, temperature=0))) > 3  # really incremental


def test_stream_holds_back_incomplete_utf8():
    bpe = BPETokenizer.train(["héllo wörld ünïcode"] * 3, vocab_size=300)
    model = random_model(bpe.vocab_size, seed=2)
    for seed in range(3):
        pieces = list(stream(model, bpe, "h", max_new_tokens=25, seed=seed))
        assert "".join(pieces) == generate(model, bpe, "h", max_new_tokens=25, seed=seed)[0].text
        assert all(not p.endswith("\ufffd") for p in pieces[:-1])


def test_bad_options_are_clear(trained):
    model, tok = trained
    with pytest.raises(LmlabError, match="temperature"):
        generate(model, tok, "a", temperature=-1)
    with pytest.raises(LmlabError, match="top_p"):
        generate(model, tok, "a", top_p=1.5)
    with pytest.raises(LmlabError, match="max_new_tokens"):
        generate(model, tok, "a", max_new_tokens=40)


def test_token_id_prompts_equal_text_prompts(trained):
    model, tok = trained
    by_text = generate(model, tok, ["the cat"], max_new_tokens=8, temperature=0)[0]
    by_ids = generate(model, tok, [tok.encode("the cat")], max_new_tokens=8, temperature=0)[0]
    assert by_ids.tokens == by_text.tokens and by_ids.prompt == "the cat"
    with pytest.raises(LmlabError, match="outside"):
        generate(model, tok, [[10_000]], max_new_tokens=2)
