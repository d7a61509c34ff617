"""FFN key-value memories: top keys by coefficient, value → token projection, corpus trigger examples, agreement."""

import itertools

import numpy as np
import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.inspection import (collect_key_stats, key_triggers, memory_agreement, run_with_cache, shuffled_match_rate,
                              top_memories, value_vectors)

from .conftest import TEXTS


def test_top_keys_and_promoted_tokens_match_hand_computation(random_model, bpe_tok):
    m = random_model
    prompt = "The capital of Spain is"
    r = top_memories(m, bpe_tok, prompt, top_k=4, n_tokens=3)
    ids = bpe_tok.encode(prompt)
    _, cache = run_with_cache(m, ids, lambda n: n.endswith("mlp.post"))
    assert [e["layer"] for e in r["layers"]] == [0, 1, 2] and r["position"] == len(ids) - 1
    for entry in r["layers"]:
        coef = cache[f"blocks.{entry['layer']}.mlp.post"][0, -1]
        want = coef.topk(4)
        assert [k["key"] for k in entry["keys"]] == want.indices.tolist()
        assert [k["coefficient"] for k in entry["keys"]] == pytest.approx(want.values.tolist(), abs=1e-6)
        for k in entry["keys"]:
            v = m.blocks[entry["layer"]].mlp.c_proj.weight[:, k["key"]]  # value = column of the output projection
            assert torch.equal(value_vectors(m, entry["layer"])[k["key"]], v.detach())
            scores = m.lm_head.weight.detach() @ v.detach()            # E·v_i
            assert [t["id"] for t in k["promotes"]] == scores.topk(3).indices.tolist()
    one = top_memories(m, bpe_tok, prompt, top_k=2, layers=1, position=0)
    assert [e["layer"] for e in one["layers"]] == [1] and one["position"] == 0
    with pytest.raises(LmlabError, match="out of range"):
        top_memories(m, bpe_tok, prompt, layers=5)


def test_trigger_examples_are_where_the_key_fires_most(random_model, bpe_tok):
    m = random_model
    corpus = np.array(bpe_tok.encode(" ".join(TEXTS)), dtype=np.uint16)
    stats = collect_key_stats(m, corpus, layers=[1, 2], n_windows=24, window=12, seed=3, batch_size=5)
    assert stats.max.shape == (2, 24, 4 * m.config.n_embd) and stats.windows.shape == (24, 13)
    key = int(stats.max[1].max(0).values.argmax())  # a key of layer 2 that fires somewhere
    trig = key_triggers(stats, bpe_tok, 2, key, top_n=3)
    acts = [t["activation"] for t in trig]
    assert acts == sorted(acts, reverse=True) and len(trig) == 3
    for t in trig:
        win = stats.windows[t["window"]]
        _, cache = run_with_cache(m, win[:12], ["blocks.2.mlp.post"])
        coef = cache["blocks.2.mlp.post"][0, :, key]
        assert float(coef.max()) == pytest.approx(t["activation"], abs=1e-5)
        assert int(coef.argmax()) == t["position"]
        assert t["next_id"] == int(win[t["position"] + 1])
        assert t["prefix"].endswith(bpe_tok.decode([int(win[t["position"]])]))
    agreement = memory_agreement(m, stats)
    for a in agreement:
        assert a["n_keys"] > 0 and 0 <= a["agreement"] <= 1 and 0 <= a["baseline_shuffled"] <= 1
        assert a["baseline_uniform"] == pytest.approx(1 / m.config.vocab_size)
    with pytest.raises(LmlabError, match="fewer than one window"):
        collect_key_stats(m, corpus[:5], n_windows=2, window=12)


def test_shuffled_baseline_is_the_mean_over_all_pairings():
    a = torch.tensor([3, 3, 1, 2, 5])
    b = torch.tensor([3, 1, 1, 4, 3])
    perms = list(itertools.permutations(range(5)))
    brute = np.mean([sum(int(a[i] == b[p[i]]) for i in range(5)) / 5 for p in perms])
    assert shuffled_match_rate(a, b, 8) == pytest.approx(brute)


def test_rank_by_contribution_and_switching_memories(random_model, bpe_tok):
    from lmlab.inspection import memory_hooks, run_with_hooks

    m = random_model
    prompt = "The capital of Spain is"
    r = top_memories(m, bpe_tok, prompt, top_k=3, layers=[1], rank="contribution")
    ids = bpe_tok.encode(prompt)
    _, cache = run_with_cache(m, ids, ["blocks.1.mlp.post"])
    contrib = cache["blocks.1.mlp.post"][0, -1].abs() * value_vectors(m, 1).norm(dim=-1)
    keys = [k["key"] for k in r["layers"][0]["keys"]]
    assert keys == contrib.topk(3).indices.tolist()
    assert [k["contribution"] for k in r["layers"][0]["keys"]] == pytest.approx(contrib.topk(3).values.tolist(),
                                                                                 rel=1e-5)
    # switching the top memory off removes its sub-update m_i·v_i from the MLP output at every position
    hooks = memory_hooks(m, [(1, keys[0], 0.0)])
    seen = {}
    run_with_hooks(m, ids, {**hooks, "blocks.1.mlp.out": lambda a, n: seen.setdefault("out", a)})
    base = {}
    run_with_hooks(m, ids, {"blocks.1.mlp.out": lambda a, n: base.setdefault("out", a)})
    sub = cache["blocks.1.mlp.post"][0, :, keys[0], None] * value_vectors(m, 1)[keys[0]]
    assert torch.allclose(base["out"][0] - seen["out"][0], sub, atol=1e-5)
    with pytest.raises(LmlabError, match="out of range"):
        memory_hooks(m, [(1, 10 ** 6, 0.0)])
    with pytest.raises(LmlabError):
        top_memories(m, bpe_tok, prompt, rank="nope")
