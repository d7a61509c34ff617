"""lmlab.data.labelled: one reader for SST-2 TSV, the UCI labelled sentences, JSONL and the world's reviews."""

import json
import random
from pathlib import Path

import pytest

from lmlab.data.labelled import SENTIMENT_LABELS, read_labelled
from lmlab.errors import LmlabError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_sst2_tsv_with_header_keeps_bare_quotes(tmp_path):
    f = tmp_path / "dev.tsv"
    f.write_text('sentence\tlabel\nit \'s a "charming" film \t1\na dull mess\t0\n', encoding="utf-8")
    texts, labels, names = read_labelled(f, label_names=SENTIMENT_LABELS)
    assert texts == ['it \'s a "charming" film', "a dull mess"]
    assert labels == [1, 0] and names == ("negative", "positive")


def test_uci_file_with_crlf_and_no_header(tmp_path):
    f = tmp_path / "amazon_cells_labelled.txt"
    f.write_bytes(b"Great for the jawbone.\t1\r\nNot a good item.. \t0\r\n\r\n")
    data = read_labelled(f)
    assert data.texts == ["Great for the jawbone.", "Not a good item.."]
    assert data.labels == [1, 0]
    assert data.label_names == ("0", "1")  # integer labels without names: the indices name themselves


def test_jsonl_with_names_indices_and_choices(tmp_path):
    f = tmp_path / "d.jsonl"
    f.write_text('{"text": "fine", "label": "positive"}\n{"text": "awful", "label": 0}\n', encoding="utf-8")
    assert read_labelled(f, label_names=SENTIMENT_LABELS).labels == [1, 0]
    g = tmp_path / "items.jsonl"  # the world's tasks/sentiment.jsonl layout: choices name the classes
    g.write_text(json.dumps({"text": "It broke.", "label": 0, "choices": ["negative", "positive"],
                             "prompt": "Review: It broke.\nSentiment:", "target": "negative"}) + "\n")
    assert read_labelled(g) == (["It broke."], [0], ("negative", "positive"))


def test_world_reviews_file_and_world_dir_match_the_generator(tmp_path):
    from lmlab.world.sentiment import sentiment_documents

    docs = sentiment_documents(random.Random(0), ["Zorvatek"], held_out=set())
    blocks = [next(docs) for _ in range(5)]
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "sentiment.txt").write_text("\n\n".join(blocks) + "\n", encoding="ascii")
    data = read_labelled(tmp_path)  # a world dir means its training reviews
    assert len(data.texts) == 5 and data.label_names == ("negative", "positive")
    for block, text, label in zip(blocks, data.texts, data.labels):
        assert block == f"Review: {text}\nSentiment: {data.label_names[label]}"


def test_errors_name_the_file_and_line(tmp_path):
    with pytest.raises(LmlabError, match="not found: .*nope.tsv"):
        read_labelled(tmp_path / "nope.tsv")
    bad = tmp_path / "bad.tsv"
    bad.write_text("good\t1\nmeh\tneutral\n")
    with pytest.raises(LmlabError, match=r"bad.tsv:2: unknown label 'neutral'.*0=negative, 1=positive"):
        read_labelled(bad, label_names=SENTIMENT_LABELS)
    bad.write_text("good\t7\n")
    with pytest.raises(LmlabError, match="unknown label 7"):
        read_labelled(bad, label_names=SENTIMENT_LABELS)
    bad.write_text("no tab here\n")
    with pytest.raises(LmlabError, match=r"bad.tsv:1: expected 'sentence<TAB>label'"):
        read_labelled(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(LmlabError, match="empty.jsonl holds no labelled examples"):
        read_labelled(empty)
    one_class = tmp_path / "one.tsv"
    one_class.write_text("a\tyes\nb\tyes\n")
    with pytest.raises(LmlabError, match="at least two distinct classes"):
        read_labelled(one_class)


def test_real_sst2_and_uci_files():
    if not SHARED.is_dir():
        pytest.skip(f"real data dir {SHARED} is absent (it sits beside the repository on the dev machines)")
    dev = read_labelled(SHARED / "sst2_alps_dev.tsv", label_names=SENTIMENT_LABELS)
    assert len(dev.texts) == 6735 and set(dev.labels) == {0, 1}
    for name in ("amazon_cells_labelled.txt", "imdb_labelled.txt", "yelp_labelled.txt"):
        data = read_labelled(SHARED / name, label_names=SENTIMENT_LABELS)
        assert len(data.texts) == 1000 and sum(data.labels) == 500, name
