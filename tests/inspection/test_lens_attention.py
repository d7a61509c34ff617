"""Logit lens and attention patterns."""

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.inspection import attention_patterns, lens_logits, logit_lens, plot_attention, token_labels


def test_lens_last_stage_is_the_model_output(random_model, bpe_tok):
    r = logit_lens(random_model, bpe_tok, "The capital of Spain is", top_k=3)
    assert [s["stage"] for s in r["stages"]] == ["embed", "layer 0", "layer 1", "layer 2"]
    last = r["stages"][-1]["positions"][0]["top"]
    assert [t["id"] for t in last] == [t["id"] for t in r["model_top"]]
    assert [t["prob"] for t in last] == pytest.approx([t["prob"] for t in r["model_top"]], abs=1e-6)
    probs = [t["prob"] for t in last]
    assert probs == sorted(probs, reverse=True) and all(0 < p <= 1 for p in probs)
    everywhere = logit_lens(random_model, bpe_tok, "The capital of Spain is", top_k=2, all_positions=True)
    assert everywhere["positions"] == list(range(len(everywhere["tokens"])))
    with pytest.raises(LmlabError):
        logit_lens(random_model, bpe_tok, "x", top_k=0)


def test_lens_reads_each_layer_through_final_norm(random_model):
    ids = [5, 6, 7, 8]
    lens, logits = lens_logits(random_model, ids)
    assert lens.shape == (random_model.config.n_layer + 1, 1, 4, random_model.config.vocab_size)
    with torch.no_grad():
        emb = random_model.wte(torch.tensor([ids])) + random_model.wpe(torch.arange(4))
        assert torch.allclose(lens[0], random_model.lm_head(random_model.ln_f(emb)), atol=1e-5)
    assert torch.allclose(lens[-1], logits, atol=1e-5)


def test_lens_on_trained_model_ends_with_the_object(facts_model):
    model, tok = facts_model
    r = logit_lens(model, tok, "the capital of New Osperia is", top_k=1)
    assert r["stages"][-1]["positions"][0]["top"][0]["token"] == "Marrow"


def test_attention_patterns_are_causal_distributions(random_model, bpe_tok, tmp_path):
    ids = bpe_tok.encode("The capital of Spain is Madrid")
    att = attention_patterns(random_model, ids)
    T = len(ids)
    assert att.shape == (3, 2, T, T)
    assert torch.allclose(att.sum(-1), torch.ones(3, 2, T), atol=1e-5)
    assert att.triu(1).abs().max() == 0  # no query sees a later key
    one = attention_patterns(random_model, ids, layers=-1)
    assert torch.allclose(one[0], att[2])
    out = tmp_path / "fig.png"
    plot_attention(att, token_labels(bpe_tok, ids), out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]  # no temp file left behind
    with pytest.raises(LmlabError, match="out of range"):
        attention_patterns(random_model, ids, layers=3)


def test_lens_before_mlp_reads_resid_mid(random_model, bpe_tok):
    from lmlab.inspection import run_with_cache, unembed

    r = logit_lens(random_model, bpe_tok, "The capital of Spain is", top_k=2, before_mlp=True)
    assert [s["stage"] for s in r["stages"]][:3] == ["embed", "layer 0 before MLP", "layer 0"]
    assert len(r["stages"]) == 1 + 2 * random_model.config.n_layer
    ids = bpe_tok.encode("The capital of Spain is")
    _, cache = run_with_cache(random_model, ids, ["blocks.1.resid_mid"])
    want = unembed(random_model, cache["blocks.1.resid_mid"][0, -1]).softmax(-1).topk(2)
    got = r["stages"][3]["positions"][0]["top"]
    assert [t["id"] for t in got] == want.indices.tolist()
