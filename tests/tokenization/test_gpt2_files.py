"""`BPETokenizer.from_gpt2_files` reproduces GPT-2 token ids, checked against two references on local files.

No download: a small byte-level BPE is trained here and written in GPT-2's file format (vocab.json with
<|endoftext|> as the last id, as in GPT-2's 50256; merges.txt with the '#version' header). References:
transformers' GPT2Tokenizer loaded from those files, and GPT-2's original pure-Python BPE algorithm (OpenAI's
encoder.py, as kept in transformers' ClvpTokenizer.bpe), which shares no code with the Rust engine we use.
"""

import json
import os

import pytest

from lmlab.tokenization import BPETokenizer, load_tokenizer

os.environ.setdefault("HF_HUB_OFFLINE", "1")

STRINGS = [
    "Hello world", " Hello world", "Hello  world", "  leading and trailing  ", "tabs\tand\nnewlines\n\n",
    "12345", " 12345", "3.14159 and 2,718,281", "0 1 2 3 10 99 100 999 1000 65536", "year2019 x1y2z3",
    "it's they're we've I'm you'll he'd DON'T", "Zürich café naïve", "東京 is Tokyo", "emoji 😀👍🏽 ok",
    "punctuation!!! ... ?? ;-) (parens) [brackets] {braces}", "<|endoftext|>", "end.<|endoftext|>Start again",
    "a<|endoftext|> b", "\u00a0non-breaking\u2003space", "", " ", "\n", "the cat sat on the mat",
]


@pytest.fixture(scope="module")
def gpt2_files(tmp_path_factory, corpus):
    from tokenizers import ByteLevelBPETokenizer

    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(corpus, vocab_size=800, min_frequency=2, show_progress=False)
    d = tmp_path_factory.mktemp("gpt2")
    trainer.save_model(str(d))
    vocab = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
    vocab["<|endoftext|>"] = len(vocab)  # GPT-2 keeps it last (50256)
    (d / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    return d


def reference_python_bpe(files_dir):
    """GPT-2's original algorithm (regex pieces → bytes → greedy lowest-rank merges), independent of HF Rust."""
    from transformers.models.clvp.tokenization_clvp import ClvpTokenizer

    ref = ClvpTokenizer(str(files_dir / "vocab.json"), str(files_dir / "merges.txt"))

    def encode(text):
        ids = []
        for k, part in enumerate(text.split("<|endoftext|>")):
            if k:
                ids.append(ref.encoder["<|endoftext|>"])
            for piece in ref.pat.findall(part):  # ClvpTokenizer._tokenize would first normalise English text
                byte_str = "".join(ref.byte_encoder[b] for b in piece.encode("utf-8"))
                ids += [ref.encoder[t] for t in ref.bpe(byte_str).split(" ")]
        return ids

    return encode


def test_ids_match_gpt2_references(gpt2_files, corpus):
    from transformers import GPT2Tokenizer

    ours = BPETokenizer.from_gpt2_files(gpt2_files / "vocab.json", gpt2_files / "merges.txt")
    hf_ref = GPT2Tokenizer.from_pretrained(str(gpt2_files))
    py_ref = reference_python_bpe(gpt2_files)
    texts = STRINGS + corpus[:200]
    for text in texts:
        expected = py_ref(text)
        assert ours.encode(text) == expected, text
        assert hf_ref.encode(text, add_special_tokens=False) == expected, text
        assert ours.decode(expected) == text
    assert ours.encode_batch(texts) == [py_ref(t) for t in texts]


def test_vocab_json_ids_and_endoftext_roles(gpt2_files):
    vocab = json.loads((gpt2_files / "vocab.json").read_text(encoding="utf-8"))
    ours = BPETokenizer.from_gpt2_files(gpt2_files / "vocab.json", gpt2_files / "merges.txt")
    assert ours.vocab_size == len(vocab)
    assert all(ours.token_to_id(t) == i for t, i in vocab.items())
    eot = vocab["<|endoftext|>"]
    assert eot == len(vocab) - 1
    assert ours.eos_id == ours.bos_id == ours.pad_id == ours.unk_id == eot
    assert ours.special_tokens == ["<|endoftext|>"]


def test_gpt2_tokenizer_survives_save_and_load(gpt2_files, tmp_path):
    ours = BPETokenizer.from_gpt2_files(gpt2_files / "vocab.json", gpt2_files / "merges.txt")
    ours.save(tmp_path / "tok.json")
    back = load_tokenizer(tmp_path / "tok.json")
    assert back.fingerprint == ours.fingerprint
    assert back.eos_id == ours.eos_id
    assert back.encode_batch(STRINGS) == ours.encode_batch(STRINGS)
