"""The suffix-array index: counts and occurrences equal a brute-force scan, documents are never crossed, n-gram and
∞-gram distributions follow their definitions, and stale or missing indexes are refused."""

import shutil

import numpy as np
import pytest

from lmlab.attribution import SuffixIndex, count, find, index, shards_fingerprint
from lmlab.data import load_manifest, load_split, load_tokenizer_of, prepare
from lmlab.errors import LmlabError
from lmlab.tokenization import CharTokenizer


def brute_positions(tokens: np.ndarray, query: np.ndarray) -> list[int]:
    n = len(query)
    windows = np.lib.stride_tricks.sliding_window_view(tokens, n)
    return np.flatnonzero((windows == query).all(axis=1)).tolist()


def test_count_and_positions_equal_a_brute_force_scan(index_of, indexed_data):
    train = np.asarray(load_split(indexed_data, "train"), dtype=np.int64)
    eos = index_of.eos_id
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        length = int(rng.integers(1, 7))
        start = int(rng.integers(0, len(train) - length))
        query = train[start:start + length]
        if eos in query:
            continue
        expected = brute_positions(train, query)
        assert index_of.count(query) == len(expected)
        assert index_of.positions(query).tolist() == expected
        assert index_of.positions(query, limit=2).tolist() == expected[:2]
        checked += 1
    assert checked > 100
    unseen = np.array([int(train[0]), int(train[0]), int(train[0]), int(train[0])])  # a token repeated: not in text
    assert index_of.count(unseen) == len(brute_positions(train, unseen)) == 0
    assert index_of.count(np.array([len(index_of.unigram) + 5])) == 0  # an id beyond the vocabulary


def test_no_match_spans_two_documents(index_of, indexed_data):
    train = np.asarray(load_split(indexed_data, "train"), dtype=np.int64)
    eos_at = np.flatnonzero(train == index_of.eos_id)
    # the last 3 tokens of document 0 followed by the first 3 of document 1: adjacent in the stream, but only
    # across an <eos>, so they must not count as a match
    end = int(eos_at[0])
    query = np.concatenate([train[end - 3:end], train[end + 1:end + 4]])
    assert index_of.count(query) == len(brute_positions(train, query))  # the scan only sees them with <eos> between
    with pytest.raises(LmlabError, match="never span two documents"):
        index_of.count(train[end - 2:end + 2])


def test_find_returns_documents_offsets_and_context(indexed_data):
    tok = load_tokenizer_of(indexed_data)
    n, hits = find(indexed_data, "The capital of", limit=3, context=5)
    assert n == count(indexed_data, "The capital of") and 1 <= len(hits) <= 3
    train = np.asarray(load_split(indexed_data, "train"))
    starts = np.concatenate([[0], np.flatnonzero(train == tok.eos_id) + 1])
    for h in hits:
        assert h.match == "The capital of"
        assert h.split == "train" and h.split_document == h.document
        doc_tokens = train[starts[h.document]:starts[h.document + 1] - 1].tolist()
        assert tok.decode(doc_tokens[h.offset:h.offset + len(tok.encode("The capital of"))]) == "The capital of"
        assert tok.decode(doc_tokens).find(h.before + h.match + h.after) >= 0  # context stays inside the document


def test_ngram_and_infgram_follow_their_definitions(index_of, indexed_data):
    train = np.asarray(load_split(indexed_data, "train"), dtype=np.int64)
    val = np.asarray(load_split(indexed_data, "val"), dtype=np.int64)
    for end in (5, 17, 40, 90):
        ctx = val[:end]
        ctx = ctx[np.flatnonzero(ctx == index_of.eos_id)[-1] + 1:] if index_of.eos_id in ctx else ctx
        nt = index_of.infgram_next(val[:end])
        L = nt.suffix_len
        suffix = ctx[len(ctx) - L:]
        assert L == len(ctx) or index_of.count(ctx[len(ctx) - L - 1:]) == 0  # the longest with a non-zero count
        followers = [int(train[p + L]) for p in (brute_positions(train, suffix) if L else range(len(train)))]
        assert nt.total == len(followers)
        assert dict(zip(nt.tokens.tolist(), nt.counts.tolist())) == {t: followers.count(t) for t in set(followers)}
        bigram = index_of.ngram_next(val[:end], 2)
        after = [int(train[p + 1]) for p in brute_positions(train, ctx[-1:])]
        assert bigram.total == len(after) and bigram.prob(after[0]) == after.count(after[0]) / len(after)
    logprobs, lengths = index_of.infgram_logprobs(val[:120])
    for i in (1, 30, 77, 119):
        nt = index_of.infgram_next(val[:i])
        assert lengths[i - 1] == nt.suffix_len
        assert np.exp(logprobs[i - 1]) == pytest.approx(nt.prob(int(val[i])))


def test_stale_index_names_both_fingerprints(world_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world_run["data_dir"], data)
    index(data, index_dir=tmp_path / "ix")
    old = SuffixIndex.open(data, tmp_path / "ix").meta["shards_fingerprint"]
    text = tmp_path / "other.txt"
    text.write_text("A different corpus entirely.\n\nWith two documents.\n")
    prepare([text], data / "tokenizer.json", data, split_blank_lines=True, progress=False, workers=1)
    with pytest.raises(LmlabError) as e:
        SuffixIndex.open(data, tmp_path / "ix")
    assert old in str(e.value) and "lmlab attribute index" in str(e.value)
    new = shards_fingerprint(load_manifest(data))
    assert new != old and new in str(e.value)


def test_bad_queries_are_one_line_errors(indexed_data, tmp_path):
    with pytest.raises(LmlabError, match="empty"):
        count(indexed_data, "")
    with pytest.raises(LmlabError, match="lmlab attribute index"):
        count(_unindexed_copy(indexed_data, tmp_path), "The capital")
    text = tmp_path / "chars.txt"
    text.write_text("abc abc\n\nabd\n")
    CharTokenizer.train(["abcd "], byte_fallback=False).save(tmp_path / "tok.json")  # unknown chars → <unk>
    prepare([text], tmp_path / "tok.json", tmp_path / "chars", split_blank_lines=True, val_fraction=0.0, progress=False, workers=1)
    index(tmp_path / "chars")
    assert count(tmp_path / "chars", "ab") == 3
    with pytest.raises(LmlabError, match="outside the tokenizer's vocabulary"):
        count(tmp_path / "chars", "abz")


def _unindexed_copy(indexed, tmp_path):
    copy = tmp_path / "plain"
    shutil.copytree(indexed, copy, ignore=shutil.ignore_patterns("attribution-index"))
    return copy


def test_rebuild_replaces_the_index_and_leaves_no_temp_dir(world_run, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(world_run["data_dir"], data)
    first = index(data)
    second = index(data, splits="all")
    assert second["n_tokens"] > first["n_tokens"] and second["splits"] == ["train", "val"]
    assert sorted(p.name for p in data.iterdir() if p.name.startswith(".")) == []
    assert SuffixIndex.open(data).meta["splits"] == ["train", "val"]
    assert second["bytes_per_token"] < 7
