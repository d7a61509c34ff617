"""Parallel text: the Tatoeba TSV and Multi30k aligned-file readers, their errors, and source<sep>target shards."""

from pathlib import Path

import numpy as np
import pytest

from lmlab.data import load_split, load_tokenizer_of
from lmlab.data.parallel import parallel_options, prepare_parallel, read_parallel, split_pairs
from lmlab.errors import LmlabError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TATOEBA = SHARED / "eng_fra_tatoeba_5k.txt"
MULTI30K = SHARED / "multi30k"


def test_tatoeba_reader():
    if not TATOEBA.is_file():
        pytest.skip(f"{TATOEBA} is absent (the shared data folder is only in the project's workspace)")
    pairs = read_parallel(TATOEBA)
    assert len(pairs) == 5000  # every line has English, French and an attribution column
    assert pairs[0] == ("Go.", "Va !") and pairs[3] == ("Hi.", "Salut !")
    assert read_parallel(TATOEBA, reverse=True)[0] == ("Va !", "Go.")


def test_multi30k_prefix_and_directory():
    if not (MULTI30K / "val.en").is_file():
        pytest.skip(f"{MULTI30K} is absent (the shared data folder is only in the project's workspace)")
    val = read_parallel(MULTI30K / "val", src_lang="en", tgt_lang="de")
    assert len(val) == 1014
    assert val[0] == ("A group of men are loading cotton onto a truck",
                      "Eine Gruppe von Männern lädt Baumwolle auf einen Lastwagen")
    both = read_parallel(MULTI30K, src_lang="fr", tgt_lang="en")  # train + val, French → English
    assert len(both) == 29000 + 1014 and both[-1014][1] == val[0][0]


def test_reader_errors(tmp_path):
    (tmp_path / "no_tab.txt").write_text("Go.\tVa !\nHello world\n", encoding="utf-8")
    with pytest.raises(LmlabError, match=r"no_tab.txt:2: no TAB"):
        read_parallel(tmp_path / "no_tab.txt")
    (tmp_path / "a.en").write_text("one\ntwo\n", encoding="utf-8")
    (tmp_path / "a.fr").write_text("un\n", encoding="utf-8")
    with pytest.raises(LmlabError, match="aligned files"):
        read_parallel(tmp_path / "a")
    (tmp_path / "sep.txt").write_text("a <sep> b\tc\n", encoding="utf-8")
    with pytest.raises(LmlabError, match="contains <sep>"):
        read_parallel(tmp_path / "sep.txt")
    with pytest.raises(LmlabError, match="not found"):
        read_parallel(tmp_path / "missing")
    with pytest.raises(LmlabError, match="no pair of aligned files"):
        read_parallel(tmp_path, src_lang="en", tgt_lang="de")


def test_prepare_parallel_holds_out_pairs_and_reads_them_back(tmp_path):
    pairs = [(f"word {i}", f"mot {i}") for i in range(60)] + [("word 0", "mot 0")]  # one repeated pair
    (tmp_path / "pairs.tsv").write_text("".join(f"{s}\t{t}\tcredit\n" for s, t in pairs), encoding="utf-8")
    m = prepare_parallel(tmp_path / "pairs.tsv", tmp_path / "data", tokenizer="char", val_fraction=0.2,
                         special_tokens=("<sep>", "<extra>"), progress=False)
    assert m["dedup"]["exact_duplicates_removed"] == 1
    assert (m["splits"]["train"]["documents"], m["splits"]["val"]["documents"]) == (48, 12)
    tok = load_tokenizer_of(tmp_path / "data")
    sep = tok.token_to_id("<sep>")
    assert sep is not None and tok.token_to_id("<extra>") is not None
    # Each document is source<sep>target, each side tokenized as its text alone.
    first = np.asarray(load_split(tmp_path / "data", "train"))
    doc = first[:list(first).index(tok.eos_id)].tolist()
    train, val = split_pairs(tmp_path / "data", "train"), split_pairs(tmp_path / "data", "val")
    assert doc == tok.encode(train[0][0]) + [sep] + tok.encode(train[0][1])
    assert sorted(train + val) == sorted(set(pairs)) and not set(train) & set(val)
    assert parallel_options(tmp_path / "data")["val_split"] == "random"


def test_a_directory_with_train_and_val_files_keeps_that_split(tmp_path):
    for split, n in (("train", 30), ("val", 5), ("test", 4)):
        (tmp_path / f"{split}.en").write_text("".join(f"a {split} {i}\n" for i in range(n)), encoding="utf-8")
        (tmp_path / f"{split}.de").write_text("".join(f"ein {split} {i}\n" for i in range(n)), encoding="utf-8")
    prepare_parallel(tmp_path, tmp_path / "data", src_lang="de", tgt_lang="en", tokenizer="char", progress=False)
    val = split_pairs(tmp_path / "data", "val")
    assert val == [(f"ein val {i}", f"a val {i}") for i in range(5)]
    assert len(split_pairs(tmp_path / "data", "train")) == 30  # test.* is left out of both splits
    opts = parallel_options(tmp_path / "data")
    # characters of 'ein train 29' + <sep> + 'a train 29', and of 'ein val 4' + <sep> + 'a val 4'
    assert opts.pop("longest_document_tokens") == {"train": 12 + 1 + 10, "val": 9 + 1 + 7}
    assert opts == {"src_lang": "de", "tgt_lang": "en", "reverse": False, "val_split": "official", "sep": "<sep>"}
