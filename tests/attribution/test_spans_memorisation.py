"""OLMoTrace spans and the memorisation report, on the tiny world's index."""

import numpy as np
import pytest

from lmlab.attribution import memorisation, span_coverage, trace_ids, trace_text
from lmlab.attribution.spans import mark_spans, maximal_spans, merge_overlaps
from lmlab.data import load_split, load_tokenizer_of
from lmlab.errors import LmlabError


def test_maximal_spans_drop_contained_matches_and_merge_joins_overlaps():
    # position 0 matches 5 tokens; 1..4 only match inside it; 3 reaches further (to 9)
    assert maximal_spans([5, 4, 3, 6, 2, 1, 0, 0, 0, 0], min_len=2) == [(0, 5), (3, 9)]
    assert maximal_spans([5, 4, 3, 6, 2, 1, 0, 0, 0, 0], min_len=6) == [(3, 9)]
    assert merge_overlaps([(3, 9), (0, 5), (12, 14), (9, 10)]) == [(0, 9), (9, 10), (12, 14)]


def _document(indexed_data, n):
    tok = load_tokenizer_of(indexed_data)
    train = np.asarray(load_split(indexed_data, "train"), dtype=np.int64)
    starts = np.concatenate([[0], np.flatnonzero(train == tok.eos_id) + 1])
    return tok, train[starts[n]:starts[n + 1] - 1]


def test_a_copied_document_is_one_span_pointing_at_its_source(index_of, indexed_data):
    tok, doc = _document(indexed_data, 7)
    piece = doc[:40]
    tr = trace_ids(index_of, piece, min_len=4, keep_fraction=1.0)
    assert [(s.start, s.end) for s in tr.spans] == [(0, 40)] and tr.merged == [(0, 40)]
    assert 7 in tr.spans[0].documents and tr.documents[0].document in tr.spans[0].documents
    assert tr.spans[0].count == index_of.count(piece)
    assert mark_spans(tok, piece.tolist(), tr.merged) == f"[[{tok.decode(piece.tolist())}]]"


def test_spliced_text_gives_spans_from_both_sources_and_keeps_the_rarest(index_of, indexed_data):
    tok, a = _document(indexed_data, 3)
    _, b = _document(indexed_data, 11)
    text = tok.decode(a[:30].tolist()) + " Zqxw vvv " + tok.decode(b[-30:].tolist())
    tr = trace_text(indexed_data, text, min_len=6, keep_fraction=1.0)
    docs = {d.document for d in tr.documents}
    assert 3 in docs and 11 in docs
    assert all(index_of.count(np.array(tr.ids[s.start:s.end])) == s.count > 0 for s in tr.spans)
    few = trace_text(indexed_data, text, min_len=6, keep_fraction=1 / len(tr.ids))  # keeps ceil(1) = 1 span
    assert len(few.spans) == 1 and few.spans[0].unigram_logprob == min(s.unigram_logprob for s in tr.spans)
    two = trace_ids(index_of, tr.ids, min_len=6, max_spans=2)  # a count instead of a fraction (the API's limit)
    assert sorted(s.unigram_logprob for s in two.spans) == sorted(s.unigram_logprob for s in tr.spans)[:2]
    assert [s.start for s in two.spans] == sorted(s.start for s in two.spans)


def test_span_coverage_counts_tokens_inside_long_enough_matches(index_of, indexed_data):
    _, doc = _document(indexed_data, 5)
    cov = span_coverage(index_of, [doc[:20]], ks=[1, 20, 21])
    assert cov.shares == [1.0, 1.0, 0.0] and cov.n_tokens == 20
    with pytest.raises(LmlabError):
        span_coverage(index_of, [doc[:5]], ks=[0])


def test_memorisation_compares_samples_with_held_out_text(world_run, indexed_data):
    r = memorisation(world_run["run_dir"], data_dir=indexed_data, samples=4, max_new_tokens=24, ks=[2, 8, 64])
    assert r.generated.ks == [2, 8, 64] and len(r.samples) == 4
    assert r.generated.shares[0] >= r.generated.shares[1] >= r.generated.shares[2] == 0.0
    assert r.held_out.n_sequences == 4 and r.held_out.shares[2] == 0.0
    assert r.generated.shares[0] > 0.5  # the model has learnt the world's phrases
