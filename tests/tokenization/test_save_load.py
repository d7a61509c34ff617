"""One JSON file for every kind: save/load keeps ids and fingerprint, across processes; damaged files are refused."""

import json
import subprocess
import sys

import pytest

from lmlab.errors import LmlabError
from lmlab.tokenization import Tokenizer, load_tokenizer, train_tokenizer

KIND_OPTIONS = [("char", {}), ("char", {"byte_fallback": False}), ("word", {}), ("bpe", {"vocab_size": 400}),
                ("bpe", {"vocab_size": 400, "numbers": "digits"})]
SAMPLE = "Alice paid 12345 for café 😀 <extract> twice.\n"


@pytest.mark.parametrize("kind,options", KIND_OPTIONS)
def test_save_then_load_gives_the_same_tokenizer(tmp_path, corpus, kind, options):
    tok = train_tokenizer(kind, corpus, special_tokens=["<extract>"], progress=False, **options)
    path = tmp_path / "tok.json"
    tok.save(path)
    header = json.loads(path.read_text(encoding="utf-8"))
    assert header["lmlab_tokenizer"] == 1 and header["kind"] == kind
    back = Tokenizer.load(path)
    assert type(back) is type(tok)
    assert back.fingerprint == tok.fingerprint
    assert back.vocab_size == tok.vocab_size and back.special_tokens == tok.special_tokens
    assert back.encode(SAMPLE) == tok.encode(SAMPLE)
    back.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()


def test_fingerprint_is_the_same_in_another_process(tmp_path, corpus):
    """Training the same text in a fresh interpreter (new hash seed) gives the same fingerprint; a saved file
    loads there with the same fingerprint too."""
    (tmp_path / "text.txt").write_text("".join(corpus), encoding="utf-8")
    fps = {}
    for kind in ("char", "word", "bpe"):
        tok = train_tokenizer(kind, ["".join(corpus)], vocab_size=400 if kind == "bpe" else None, progress=False)
        tok.save(tmp_path / f"{kind}.json")
        fps[kind] = tok.fingerprint
    script = (
        "import sys, json; from pathlib import Path\n"
        "from lmlab.tokenization import train_tokenizer, load_tokenizer\n"
        "d = Path(sys.argv[1]); text = (d / 'text.txt').read_text(encoding='utf-8'); out = {}\n"
        "for kind in ('char', 'word', 'bpe'):\n"
        "    t = train_tokenizer(kind, [text], vocab_size=400 if kind == 'bpe' else None, progress=False)\n"
        "    out[kind] = [t.fingerprint, load_tokenizer(d / f'{kind}.json').fingerprint]\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": ""}, check=True)
    other = json.loads(res.stdout)
    assert other == {k: [fp, fp] for k, fp in fps.items()}


def test_loading_bad_files_is_a_clear_error(tmp_path):
    with pytest.raises(LmlabError, match="not found"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "junk.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LmlabError, match="not a tokenizer JSON"):
        load_tokenizer(tmp_path / "junk.json")
    (tmp_path / "other.json").write_text('{"vocab": {}}', encoding="utf-8")
    with pytest.raises(LmlabError, match="no 'lmlab_tokenizer' header"):
        load_tokenizer(tmp_path / "other.json")
    (tmp_path / "kind.json").write_text('{"lmlab_tokenizer": 1, "kind": "morse"}', encoding="utf-8")
    with pytest.raises(LmlabError, match="unknown tokenizer kind 'morse'"):
        load_tokenizer(tmp_path / "kind.json")


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_damaged_tokenizer_file_is_refused(tmp_path, kind):
    tok = train_tokenizer(kind, ["some text 123"], progress=False)
    tok.save(tmp_path / "tok.json")
    d = json.loads((tmp_path / "tok.json").read_text(encoding="utf-8"))
    d.pop("special_tokens")
    (tmp_path / "tok.json").write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(LmlabError, match="damaged"):
        load_tokenizer(tmp_path / "tok.json")


def test_tokenizer_works_in_spawned_worker_processes(corpus):
    """The data pipeline sends tokenizers to worker processes: they must pickle and give identical ids there."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    chunks = [corpus[:100], corpus[100:200]]
    for kind in ("bpe", "char", "word"):
        tok = train_tokenizer(kind, corpus, vocab_size=400 if kind == "bpe" else None, progress=False)
        with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
            assert list(pool.map(tok.encode_batch, chunks)) == [tok.encode_batch(c) for c in chunks]
