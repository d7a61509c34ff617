"""`eval_ppl` / `data_perplexity`: one path names a shard directory (its split) or a UTF-8 text file."""

import math

import pytest

from lmlab.data import prepare
from lmlab.errors import LmlabError
from lmlab.evaluation import data_perplexity, eval_ppl, format_perplexity


def test_a_text_file_and_a_shard_dir_give_the_same_kind_of_figures(random_model, random_run, tmp_path):
    model, tok = random_model
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat.\n\n" * 20, encoding="utf-8")
    r = data_perplexity(model, tok, text)
    assert r["data"] == str(text) and r["ppl"] == pytest.approx(math.exp(r["loss_nats"])) and "bits_per_byte" in r
    tok_file = tmp_path / "tok.json"
    tok.save(tok_file)
    shards = tmp_path / "shards"
    prepare([text], str(tok_file), shards, val_fraction=0.5, dedup="none", split_blank_lines=True,
            progress=False)
    s = eval_ppl(random_run, shards, split="val")
    assert s["data"] == f"val split of {shards}" and s["n_tokens"] > 0 and "bits_per_byte" in s
    assert format_perplexity(s).startswith(f"val split of {shards}: loss ")


def test_a_path_that_is_neither_is_a_one_line_error(random_model, random_run, tmp_path):
    model, tok = random_model
    with pytest.raises(LmlabError, match="neither a shard directory nor a text file"):
        data_perplexity(model, tok, tmp_path / "absent")
    with pytest.raises(LmlabError, match="records no training data dir"):
        eval_ppl(random_run)
    bad = tmp_path / "b.txt"
    bad.write_bytes(b"\xff\xfe")
    with pytest.raises(LmlabError, match="is not UTF-8 text"):
        data_perplexity(model, tok, bad)
