"""Word-embedding models: counting, centred SVD = PCA, PPMI, word2vec learning, and fitting through `lmlab train`."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from lmlab.checkpoint import load_run
from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.models.embeddings import (CoocConfig, CountEmbeddings, PPMIConfig, Word2Vec, Word2VecConfig,
                                     centred_operator, compact_words, cooccurrence_matrix, ppmi_matrix,
                                     truncated_svd, word_mask_of)
from lmlab.tokenization import WordTokenizer
from lmlab.data import prepare
import lmlab.recipes as recipes


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cooccurrence_counts_hand_example():
    # a b c a | a b   (| = document boundary); window 2
    words = np.array([0, 1, 2, 0, 0, 1])
    doc = np.array([0, 0, 0, 0, 1, 1])
    X = cooccurrence_matrix(words, doc, 3, window=2).toarray()
    # doc 0 pairs: d=1 (a,b) (b,c) (c,a); d=2 (a,c) (b,a); doc 1: d=1 (a,b). Symmetric: each pair in both cells.
    expected = np.array([[0, 3, 2],
                         [3, 0, 1],
                         [2, 1, 0]], dtype=float)
    np.testing.assert_array_equal(X, expected)
    Xw = cooccurrence_matrix(words, doc, 3, window=2, distance_weighting=True).toarray()
    np.testing.assert_allclose(Xw, [[0, 2.5, 1.5], [2.5, 0, 1], [1.5, 1, 0]])  # (b,a) and (a,c) are at d=2: ½


def test_cooccurrence_same_word_pair_counts_twice_on_diagonal():
    X = cooccurrence_matrix(np.array([5, 5]), np.zeros(2, dtype=int), 6, window=3).toarray()
    assert X[5, 5] == 2 and X.sum() == 2


def test_cooccurrence_counts_across_chunks_match_a_direct_count(monkeypatch):
    import lmlab.models.embeddings.cooccurrence as cooc

    rng = np.random.default_rng(0)
    words, doc = rng.integers(0, 20, 500), np.cumsum(rng.random(500) < 0.05)
    whole = cooccurrence_matrix(words, doc, 20, window=3).toarray()
    monkeypatch.setattr(cooc, "_CHUNK", 7)  # many chunk boundaries: no pair lost or counted twice
    np.testing.assert_array_equal(cooccurrence_matrix(words, doc, 20, window=3).toarray(), whole)
    direct = np.zeros((20, 20))
    for i in range(500):
        for j in range(i + 1, min(i + 4, 500)):
            if doc[i] == doc[j]:
                direct[words[i], words[j]] += 1
                direct[words[j], words[i]] += 1
    np.testing.assert_array_equal(whole, direct)


def test_cooccurrence_with_a_50k_vocabulary_stays_sparse():
    rng = np.random.default_rng(0)
    n = 50_000
    words = (rng.zipf(1.3, 300_000) % n).astype(np.int64)
    X = cooccurrence_matrix(words, np.zeros(len(words), dtype=np.int64), n, window=5)
    assert X.shape == (n, n) and sp.issparse(X)
    assert X.sum() == 2 * sum(len(words) - d for d in range(1, 6))
    assert X.nnz <= 2 * 5 * len(words)  # never more cells than pairs: nothing dense was built


def test_compact_words_drops_non_words_and_numbers_documents():
    tok = WordTokenizer.train(["Paris , France . Rome , Italy ."])
    ids = tok.encode("Paris , France .") + [tok.eos_id] + tok.encode("Rome , Italy .")
    words, doc = compact_words(np.array(ids), word_mask_of(tok), tok.eos_id)
    assert [tok.id_to_token(i) for i in words] == ["Paris", "France", "Rome", "Italy"]
    assert doc.tolist() == [0, 0, 1, 1]


def test_centred_svd_equals_dense_pca():
    X = sp.random(40, 30, density=0.3, random_state=2, format="csr") * 10
    k = 5
    U, S = truncated_svd(centred_operator(X), k, seed=0)
    dense = X.toarray()
    centred = dense - dense.mean(axis=0)
    u, s, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(S, s[:k], rtol=1e-6)
    pca_scores = centred @ vt[:k].T  # projections on the first k principal axes = u Σ
    ours = U * S
    for j in range(k):  # equal up to each component's sign
        sign = np.sign(ours[:, j] @ pca_scores[:, j])
        np.testing.assert_allclose(ours[:, j] * sign, pca_scores[:, j], atol=1e-6)


def test_ppmi_hand_values():
    X = sp.csr_matrix(np.array([[0.0, 2.0, 1.0],
                                [2.0, 0.0, 1.0],
                                [1.0, 1.0, 0.0]]))
    total, row, col = 8.0, np.array([3.0, 3.0, 2.0]), np.array([3.0, 3.0, 2.0])
    P = ppmi_matrix(X, alpha=1.0).toarray()
    # PMI(0,1) = log(2·8 / (3·3)) > 0 ; PMI(0,2) = log(1·8/(3·2)) > 0 ; PMI(2,1) = log(8/6)
    assert P[0, 1] == pytest.approx(math.log(2 * total / (row[0] * col[1])))
    assert P[0, 2] == pytest.approx(math.log(1 * total / (row[0] * col[2])))
    assert P[0, 0] == 0  # no co-occurrence: PMI −∞, clipped to 0
    # smoothing α: P_α(c) = col^α / Σ col^α
    a = 0.75
    pa = col ** a / (col ** a).sum()
    Pa = ppmi_matrix(X, alpha=a).toarray()
    assert Pa[0, 2] == pytest.approx(max(0.0, math.log((1 / total) / ((row[0] / total) * pa[2]))))
    assert (Pa >= 0).all()


def _toy_corpus(n_docs: int = 300, seed: int = 0) -> list[str]:
    """Animals and vehicles in disjoint contexts: 'cat'/'dog' share every context, 'car'/'bus' share theirs."""
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        if rng.random() < 0.5:
            a = rng.choice(["cat", "dog"])
            docs.append(f"the {a} eats food and the {a} sleeps on the sofa")
        else:
            v = rng.choice(["car", "bus"])
            docs.append(f"a {v} drives on roads and a {v} needs fuel at stations")
    return docs


def _encode(tok, docs):
    ids = []
    for d in docs:
        ids += tok.encode(d) + [tok.eos_id]
    return np.array(ids)


def _toy_word2vec(architecture: str, **settings):
    """(model, tokenizer, ids) of a small word2vec on the toy corpus."""
    torch.manual_seed(0)
    docs = _toy_corpus()
    tok = WordTokenizer.train(docs)
    model = Word2Vec(Word2VecConfig(vocab_size=tok.vocab_size, dim=16, window=3, architecture=architecture,
                                    negatives=4, subsample=0.0, **settings))
    return model, tok, _encode(tok, docs)


def _assert_shared_contexts_bring_words_together(model, tok):
    v = torch.nn.functional.normalize(model.word_vectors(), dim=1)
    i = {w: tok.token_to_id(w) for w in ("cat", "dog", "car", "bus")}
    assert v[i["cat"]] @ v[i["dog"]] > v[i["cat"]] @ v[i["car"]]
    assert v[i["car"]] @ v[i["bus"]] > v[i["bus"]] @ v[i["dog"]]


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_word2vec_loss_decreases_and_shared_contexts_bring_words_together(architecture):
    model, tok, ids = _toy_word2vec(architecture, block_size=32, epochs=0)
    model.fit_from_tokens(ids, tok)  # epochs=0: counts only, the tables are trained by the optimizer below
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    rows = torch.from_numpy(ids[: (len(ids) // 32) * 32].reshape(-1, 32).astype(np.int64))
    losses = []
    for step in range(60):
        batch = rows[torch.randint(0, len(rows), (16,))]
        _, loss = model(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])
    _assert_shared_contexts_bring_words_together(model, tok)


@pytest.mark.parametrize("architecture", ["skipgram", "cbow"])
def test_word2vec_sgd_fit_lowers_the_loss_and_brings_shared_context_words_together(architecture):
    model, tok, ids = _toy_word2vec(architecture, epochs=4, alpha=0.05, sgd_batch=64)
    summary = model.fit_from_tokens(ids, tok)
    losses = summary["epoch_losses"]
    assert len(losses) == 4 and losses[-1] < 0.8 * losses[0]
    assert not any(p.requires_grad for p in model.parameters())  # trained: `lmlab train` saves it as fitted
    _assert_shared_contexts_bring_words_together(model, tok)


def test_noise_draws_follow_the_distribution_and_never_pick_impossible_ids():
    from lmlab.models.embeddings.sgd import draw_noise, noise_cdf

    p = torch.tensor([0.0, 0.5, 0.0, 0.3, 0.2, 0.0])
    draws = draw_noise(noise_cdf(p), 200_000, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=6).double() / len(draws)
    assert freq[[0, 2, 5]].sum() == 0
    assert torch.allclose(freq, p.double(), atol=0.005)


def test_word2vec_pairs_use_each_centres_reduced_window():
    from lmlab.models.embeddings.windows import window_pairs

    words = torch.tensor([[10, 11, 12, 13]])
    valid = torch.ones_like(words, dtype=torch.bool)
    doc = torch.tensor([[0, 0, 0, 1]])  # the last word is another document: it pairs with nothing
    reach = torch.tensor([[2, 1, 1, 2]])
    pos, centres, contexts = window_pairs(words, valid, doc, window=2, reach=reach)
    pairs = sorted(zip(centres.tolist(), contexts.tolist()))
    # centre 10 reaches 2 words (11, 12); 11 and 12 reach 1 word each; no pair crosses into document 1
    assert pairs == [(10, 11), (10, 12), (11, 10), (11, 12), (12, 11)]
    assert sorted(zip(pos.tolist(), centres.tolist())) == sorted(zip([0, 0, 1, 1, 2], [10, 10, 11, 11, 12]))
    _, full, _ = window_pairs(words, valid, doc, window=2)  # no reach: everything within the window
    assert len(full) == 6


def test_word2vec_distributions_follow_the_formulas():
    tok = WordTokenizer.train(["x y z ,"])
    model = Word2Vec(Word2VecConfig(vocab_size=tok.vocab_size, subsample=1e-1, noise_power=0.75))
    x, y = tok.token_to_id("x"), tok.token_to_id("y")
    model.fit_from_tokens(np.array([x] * 90 + [y] * 10 + [tok.token_to_id(",")] * 50), tok)
    noise = model.noise_distribution()
    assert noise[x] / noise[y] == pytest.approx(9 ** 0.75, rel=1e-5)  # unigram^0.75
    assert noise[tok.token_to_id(",")] == 0  # never a non-word
    keep = model.keep_probability()
    f = 0.9  # f over words only
    assert keep[x] == pytest.approx((math.sqrt(f / 0.1) + 1) * 0.1 / f, rel=1e-5)  # the C tool's / gensim's rule
    assert keep[y] == pytest.approx(1.0)  # (√1 + 1) · 1 = 2, capped at 1


@pytest.fixture
def toy_data(tmp_path):
    """Word-token shards of the toy corpus (one document per blank-line block)."""
    text = tmp_path / "toy.txt"
    text.write_text("\n\n".join(_toy_corpus(300)))
    prepare([text], "word", tmp_path / "data", split_blank_lines=True, dedup="none", progress=False)
    return tmp_path / "data"


def test_count_models_fit_through_lmlab_train_and_reload(tmp_path, toy_data):
    for model_type in ("cooc", "ppmi"):
        out = tmp_path / model_type
        result = recipes.run(out=out, data_dir=toy_data, model_type=model_type,
                             overrides={"dim": 4, "window": 2}, progress=False).train
        assert result.stop_reason == "fitted" and result.step == 0
        run = load_run(out)
        assert isinstance(run.model, CountEmbeddings) and run.model_type == model_type
        tok = run.tokenizer
        v = torch.nn.functional.normalize(run.model.word_vectors(), dim=1)
        cat, dog, car = (tok.token_to_id(w) for w in ("cat", "dog", "car"))
        assert v[cat] @ v[dog] > v[cat] @ v[car], model_type
        assert not run.model.word_mask[tok.token_to_id("<eos>")]


def test_word2vec_trains_through_the_training_loop(tmp_path, toy_data):
    out = tmp_path / "w2v"
    result = recipes.run(out=out, data_dir=toy_data, model_type="word2vec",
                         overrides={"epochs": 0, "dim": 8, "window": 2, "block_size": 16, "max_iters": 30,
                                    "batch_size": 8, "lr": 0.05, "weight_decay": 0, "warmup_iters": 0, "eval_iters": 2,
                                    "eval_interval": 30, "device": "cpu"}, progress=False).train
    assert result.step == 30 and math.isfinite(result.last_val_loss)
    run = load_run(out)
    assert run.model.counts.sum() > 0  # the unigram table was fitted before training and saved
    assert torch.equal(run.model.word_vectors(), run.model.in_embed.weight)


def test_word2vec_gets_its_own_training_defaults(tmp_path, toy_data):
    # `lmlab train --model word2vec --epochs 0` (the training loop) must not inherit the GPT's weight decay (it
    # shrinks every vector).
    out = tmp_path / "w2v-defaults"
    assert main(["train", "--model", "word2vec", "--data", str(toy_data), "--out", str(out), "--no-progress",
                 "--epochs", "0", "--max_iters", "4", "--dim", "8", "--block_size", "16", "--eval_iters", "1",
                 "--device", "cpu"]) == 0
    training = json.loads((out / "config.json").read_text())["training"]
    assert training["lr"] == 0.02 and training["weight_decay"] == 0.0 and training["warmup_iters"] == 0


def test_bad_settings_are_one_line_errors():
    with pytest.raises(LmlabError, match="architecture"):
        Word2VecConfig(architecture="glove")
    with pytest.raises(LmlabError, match="count_transform"):
        CoocConfig(count_transform="tfidf")
    with pytest.raises(LmlabError, match="alpha"):
        PPMIConfig(alpha=0)
    with pytest.raises(LmlabError, match="unknown"):
        CoocConfig.from_dict({"dims": 3})
