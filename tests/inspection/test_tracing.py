"""Causal tracing: exact identities (zero noise, full restoration), batching does not change numbers, one cell
recomputed by hand, ROME's windows and token buckets, and a trained model whose facts are traced to the subject."""

import json

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.inspection import (BUCKETS, Trace, average_traces, best_layer, causal_trace, default_window, plot_average,
                              plot_trace, run_with_cache, run_with_hooks, trace_facts, trace_tokens, window_layers)

from .conftest import fact_records

IDS = [5, 9, 40, 41, 7, 100, 12]
SUBJECT = (2, 4)


def test_rome_windows():
    assert default_window(48) == 10 and default_window(12) == 6 and default_window(4) == 2 and default_window(1) == 1
    assert list(window_layers(0, 10, 48)) == list(range(0, 5))
    assert list(window_layers(20, 10, 48)) == list(range(15, 25))
    assert list(window_layers(47, 10, 48)) == list(range(42, 48))
    assert list(window_layers(1, 3, 4)) == [0, 1, 2]
    assert list(window_layers(2, 1, 4)) == [2]


def test_zero_noise_means_no_effect(random_model):
    clean, corrupted, scores, _ = trace_tokens(random_model, IDS, SUBJECT, 17, noise_std=0.0, samples=3)
    assert corrupted == pytest.approx(clean, abs=1e-6)
    for s in scores.values():
        assert torch.allclose(s, torch.full_like(s, clean), atol=1e-6)


def test_restoring_everything_downstream_recovers_the_clean_probability(random_model):
    L = random_model.config.n_layer
    clean, corrupted, scores, _ = trace_tokens(random_model, IDS, (3, 4), 17, noise_std=1.0, samples=4)
    assert abs(corrupted - clean) > 1e-6  # the noise matters (a random model is nearly uniform)
    # the last layer's residual at the last token is the whole output
    assert scores["resid"][L - 1, -1] == pytest.approx(clean, abs=1e-6)
    # tokens before the subject are never corrupted: restoring them changes nothing
    assert torch.all(scores["mlp"][:, :3] == corrupted)
    # subject = the last token: its residual state at any layer carries all the corruption still to come
    clean, _, scores, _ = trace_tokens(random_model, IDS, (6, 7), 17, noise_std=1.0, samples=4)
    assert torch.allclose(scores["resid"][:, 6], torch.full((L,), clean), atol=1e-6)


def test_batching_and_one_cell_by_hand(random_model):
    a = trace_tokens(random_model, IDS, SUBJECT, 17, noise_std=0.5, samples=4, window=2, seed=1)
    b = trace_tokens(random_model, IDS, SUBJECT, 17, noise_std=0.5, samples=4, window=2, seed=1, max_rows=4)
    for k in a[2]:
        assert torch.allclose(a[2][k], b[2][k], atol=1e-6)
    # the (mlp, layer 1, token 5) cell: restore mlp.out at layers 0 and 1 (window 2 around 1) at token 5
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(4, 2, random_model.config.n_embd, generator=gen) * 0.5

    def corrupt(x, name):
        x = x.clone()
        x[:, 2:4] += noise
        return x
    _, cache = run_with_cache(random_model, IDS, ["blocks.0.mlp.out", "blocks.1.mlp.out"])

    def restore(x, name):
        x = x.clone()
        x[:, 5] = cache[name][0, 5]
        return x
    logits = run_with_hooks(random_model, [IDS] * 4,
                            {"embed": corrupt, "blocks.0.mlp.out": restore, "blocks.1.mlp.out": restore})
    p = logits[:, -1].softmax(-1)[:, 17].mean()
    assert a[2]["mlp"][1, 5] == pytest.approx(float(p), abs=1e-6)
    assert a[1] == pytest.approx(float(b[1]), abs=1e-7)


def test_trained_model_recall_depends_on_the_subject(facts_model, tmp_path):
    model, tok = facts_model
    tr = causal_trace(model, tok, "the capital of {} is", "Old Tallovia", "Yelden")
    assert tr.known and tr.clean_prob > 0.5
    assert tr.total_effect > 0.3  # noising the subject destroys the recall
    assert tr.subject_range == (3, 5) and tr.tokens[3:5] == ["Old", "Tallovia"]
    L = model.config.n_layer
    # restoring the last token's final residual state restores everything
    assert tr.scores["resid"][L - 1, -1] == pytest.approx(tr.clean_prob, abs=1e-5)
    peak = tr.peak("resid")
    assert peak["token"] >= 3 and peak["ie"] > 0.3
    d = tr.to_dict()
    json.dumps(d)
    assert len(d["indirect_effect"]["mlp"]) == L and len(d["indirect_effect"]["mlp"][0]) == len(tr.tokens)
    plot_trace(tr, tmp_path / "t.png")
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    # no target: the model's own prediction is traced
    own = causal_trace(model, tok, "the capital of Old Tallovia is", "Old Tallovia")
    assert own.target_token == "Yelden" and own.known


def test_average_over_facts(facts_model, tmp_path):
    model, tok = facts_model
    traces = trace_facts(model, tok, fact_records(), samples=5)
    assert len({t.noise_std for t in traces}) == 1  # one noise level for the whole set (ROME)
    avg = average_traces(traces)
    assert avg["buckets"] == list(BUCKETS) and avg["n_facts"] == 6 and 1 <= avg["n_used"] <= 6
    assert avg["n_used"] == avg["n_known"] == sum(t.known for t in traces)
    assert avg["total_effect"] > 0.1
    for kind in ("resid", "mlp", "attn"):
        assert len(avg["indirect_effect"][kind]) == 6
        assert avg["peaks"][kind]["bucket"] in BUCKETS
    json.dumps(avg)
    plot_average(avg, tmp_path / "a.png")
    assert (tmp_path / "a.png").is_file()


def _fake(scores_by_token, subject_range, corrupted=0.0):
    T = len(scores_by_token)
    s = torch.tensor([scores_by_token], dtype=torch.float32)  # one layer
    return Trace(prompt="", subject="", target=None, tokens=[str(i) for i in range(T)], subject_range=subject_range,
                 target_id=0, target_token="", clean_prob=1.0, corrupted_prob=corrupted, noise_std=1.0, samples=1,
                 window=1, scores={"mlp": s}, clean_top_id=0)


def test_rome_token_buckets():
    # tokens: 0 prefix | 1 2 3 4 subject | 5 first after | 6 7 further | 8 last
    tr = _fake([9, 1, 2, 3, 4, 5, 6, 7, 8], (1, 5))
    assert tr.buckets() == {BUCKETS[0]: [1], BUCKETS[1]: [2, 3], BUCKETS[2]: [4], BUCKETS[3]: [5],
                            BUCKETS[4]: [6, 7], BUCKETS[5]: [8]}
    # subject right before the last token: that token is both 'first subsequent' and 'last' (as in ROME)
    short = _fake([0, 1, 2], (1, 2), corrupted=0.5)
    avg = average_traces([tr, short], known_only=False)
    ie = [row[0] for row in avg["indirect_effect"]["mlp"]]
    assert ie == pytest.approx([(1 + 0.5) / 2, 2.5, (4 + 0.5) / 2, (5 + 1.5) / 2, 6.5, (8 + 1.5) / 2])
    assert avg["counts"] == [2, 2, 2, 2, 2, 2]


def test_errors(random_model, bpe_tok):
    with pytest.raises(LmlabError, match="not in the prompt"):
        causal_trace(random_model, bpe_tok, "The capital of Spain is", "France")
    with pytest.raises(LmlabError, match="at least 1"):
        trace_tokens(random_model, IDS, SUBJECT, 3, noise_std=1.0, samples=0)
    with pytest.raises(LmlabError, match="fact 2"):
        trace_facts(random_model, bpe_tok, [{"prompt": "A {}", "subject": "x"}, {"prompt": 3}])


def test_best_layer_reads_one_bucket():
    avg = {"indirect_effect": {"mlp": [[0.1, 0.2, 0.0]] * 2 + [[0.0, 0.1, 0.5]] + [[0.9, 0.0, 0.0]] * 3}}
    assert best_layer(avg) == 2  # last subject token row
    assert best_layer(avg, bucket="last token") == 0
    with pytest.raises(LmlabError, match="unknown token bucket"):
        best_layer(avg, bucket="subject")
