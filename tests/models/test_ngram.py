"""The n-gram LM: interpolated modified Kneser-Ney probabilities are distributions, match hand computation, and beat
add-one / unigram baselines on held-out world text; the model survives a run dir round trip."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmlab.models.ngram import FALLBACK_DISCOUNTS, NGramConfig, NGramLM, kn_discounts


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fitted(tokens, vocab_size, order):
    model = NGramLM(NGramConfig(vocab_size=vocab_size, order=order))
    model.fit_from_tokens(np.asarray(tokens), progress=False)
    return model


@settings(max_examples=60, deadline=None)
@given(data=st.data(), vocab_size=st.integers(2, 12), order=st.integers(1, 5))
def test_probabilities_sum_to_one_for_every_context_and_order(data, vocab_size, order):
    # Corpora use only part of the vocabulary, so contexts and ids never seen in training are queried too.
    seen = data.draw(st.integers(1, vocab_size))
    corpus = data.draw(st.lists(st.integers(0, seen - 1), min_size=order, max_size=120))
    contexts = data.draw(st.lists(st.lists(st.integers(0, vocab_size - 1), min_size=6, max_size=6), min_size=1,
                                  max_size=4))
    model = fitted(corpus, vocab_size, order)
    P = model.next_token_probs(torch.tensor(contexts))
    assert P.shape == (len(contexts), 6, vocab_size)
    assert torch.allclose(P.sum(-1), torch.ones(len(contexts), 6, dtype=torch.float64), atol=1e-6)
    assert (P > 0).all(), "every id, seen or not, keeps some probability (the uniform floor)"


def test_discounts_are_chen_goodman_estimates():
    # n1..n4 = 10, 5, 3, 2: Y = 10 / (10 + 2·5) = 0.5; D1 = 1 − 2·0.5·5/10; D2 = 2 − 3·0.5·3/5; D3+ = 3 − 4·0.5·2/3
    d1, d2, d3 = kn_discounts((10, 5, 3, 2))
    assert (d1, d2) == pytest.approx((0.5, 1.1))
    assert d3 == pytest.approx(3 - 4 / 3)
    assert kn_discounts((3, 0, 0, 0)) == FALLBACK_DISCOUNTS  # too few counts to estimate


def test_bigram_matches_hand_computation():
    # Corpus "a b a b c" (ids 0 1 0 1 2), vocabulary of 4 (id 3 = "d" never occurs). Count-of-counts are too thin
    # for the estimate, so every order uses the fallback discounts D1 = 0.5, D2 = 1.0.
    # Unigram level (continuation counts: a←b, b←a, c←b → 1 each, total 3):
    #   γ = 0.5·3/3 = 0.5;  P1(a) = P1(b) = P1(c) = (1 − 0.5)/3 + 0.5/4 = 7/24;  P1(d) = 0.5/4 = 1/8
    # Bigram level (raw counts ab:2, ba:1, bc:1):
    #   after a: c(a·) = 2, γ(a) = D2·1/2 = 0.5:  P(b|a) = (2 − 1)/2 + 0.5·7/24 = 31/48, P(a|a) = P(c|a) = 7/48
    #   after b: c(b·) = 2, γ(b) = D1·2/2 = 0.5:  P(a|b) = P(c|b) = (1 − 0.5)/2 + 0.5·7/24 = 19/48, P(b|b) = 7/48
    #   after c (never followed by anything) and after d (never seen): the unigram level
    model = fitted([0, 1, 0, 1, 2], 4, 2)
    P = model.next_token_probs(torch.tensor([[0, 1, 2, 3]]))[0]
    unigram = [7 / 24, 7 / 24, 7 / 24, 1 / 8]
    expected = [[7 / 48, 31 / 48, 7 / 48, 1 / 16],
                [19 / 48, 7 / 48, 19 / 48, 1 / 16],
                unigram, unigram]
    np.testing.assert_allclose(P.numpy(), np.array(expected), rtol=0, atol=1e-12)


def test_loss_and_log_probs_are_those_of_the_distribution():
    model = fitted([0, 1, 0, 1, 2, 0, 1], 5, 3)
    idx = torch.tensor([[0, 1, 0, 1, 2]])
    targets = torch.tensor([[1, 0, 1, 2, 0]])
    logits, loss = model(idx, targets)
    P = model.next_token_probs(idx)
    expected = -P[0, torch.arange(5), targets[0]].log().mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # softmax of the returned "logits" (log-probs) is the distribution itself
    assert torch.allclose(logits.softmax(-1).double(), P, atol=1e-6)


def _split_world(tmp_path):
    from lmlab.world import generate_world

    generate_world(tmp_path / "world", seed=0, size="100KB", progress=False)
    text = "\n".join(p.read_text() for p in sorted((tmp_path / "world" / "corpus").glob("*.txt")))
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    rng = np.random.default_rng(0)
    held = rng.random(len(paragraphs)) < 0.1
    train = "\n\n".join(p for p, h in zip(paragraphs, held) if not h)
    val = "\n\n".join(p for p, h in zip(paragraphs, held) if h)
    return train, val


def test_kneser_ney_beats_add_one_and_unigram_on_held_out_world_text(tmp_path):
    from lmlab.tokenization import train_tokenizer

    train_text, val_text = _split_world(tmp_path)
    tok = train_tokenizer("word", [train_text], progress=False)
    train = np.asarray(tok.encode(train_text), dtype=np.int64)
    val = np.asarray(tok.encode(val_text), dtype=np.int64)
    V = tok.vocab_size
    model = fitted(train, V, 3)
    idx = torch.from_numpy(val)[None]
    _, loss = model(idx[:, :-1], idx[:, 1:])
    kn_ppl = math.exp(loss.item())

    # Baselines on the same held-out tokens: add-one (Laplace) bigram and add-one unigram.
    uni = np.bincount(train, minlength=V) + 1.0
    uni_ppl = math.exp(-np.mean(np.log(uni[val[1:]] / uni.sum())))
    big = np.ones((V, V))
    np.add.at(big, (train[:-1], train[1:]), 1.0)
    big_ppl = math.exp(-np.mean(np.log(big[val[:-1], val[1:]] / big[val[:-1]].sum(1))))
    print(f"held-out perplexity: KN trigram {kn_ppl:.2f}, add-one bigram {big_ppl:.2f}, add-one unigram {uni_ppl:.2f}")
    assert kn_ppl < 0.8 * big_ppl and kn_ppl < 0.5 * uni_ppl, (kn_ppl, big_ppl, uni_ppl)


def test_higher_orders_fit_training_text_better():
    rng = np.random.default_rng(0)
    corpus = np.tile(rng.integers(0, 20, 50), 20)  # a repeated random phrase: long contexts predict it exactly
    idx = torch.from_numpy(corpus[:200])[None]
    losses = [fitted(corpus, 20, n)(idx[:, :-1], idx[:, 1:])[1].item() for n in (1, 2, 3)]
    assert losses[0] > losses[1] > losses[2]


def test_run_dir_round_trip_keeps_probabilities(tmp_path):
    from lmlab.checkpoint import load_run, save_run
    from lmlab.tokenization import CharTokenizer

    tok = CharTokenizer.train(["abcab cab"])
    ids = tok.encode("abcab cab abca")
    model = fitted(ids, tok.vocab_size, 4)
    save_run(tmp_path / "run", model, tok, model_type="ngram", model_config=model.config)
    run = load_run(tmp_path / "run")
    assert run.model_config.table_sizes == model.config.table_sizes
    idx = torch.tensor([ids])
    assert torch.equal(run.model(idx)[0], model(idx)[0])
