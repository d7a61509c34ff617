"""`lmlab export hf`: every GPT lmlab trains loads in transformers with AutoModelForCausalLM and AutoTokenizer and
gives the same logits and token ids; what cannot map is refused with the reason.

Models are tiny and random, with weights drawn wide (std 0.3, LayerNorm gains and biases too) so that logits vary
by O(1) across tokens and positions: a wrong channel order or pairing would show far above the 1e-4 tolerance."""

import json

import pytest
import torch

transformers = pytest.importorskip("transformers")

from lmlab.checkpoint import load_run, save_run  # noqa: E402
from lmlab.errors import LmlabError  # noqa: E402
from lmlab.generation import generate  # noqa: E402
from lmlab.hub import export_hf, export_hf_gpt2  # noqa: E402
from lmlab.models import GPT, GPTConfig  # noqa: E402
from lmlab.tokenization import BPETokenizer, CharTokenizer, WordTokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN_TEXT = ["The capital of Braria is Dremby. In 1987 it had 12345 people; 678 + 9 = 687.",
              "Don't stop: she's here, they're gone, we've won, I'm sure, you'll see, he'd go.",
              "naïve café, Straße, 東京 and 北京, emoji 🙂 and tabs\tand\n\nnew paragraphs   with spaces."] * 30
# Varied text for id equality: digit runs of every length, decimals, unicode (combining marks, CJK, emoji, RTL),
# whitespace runs (spaces, tabs, CR/LF, blank lines, trailing), contractions, special-token strings.
PROBES = ["Price: 1234567 dollars, 3.14159 and 0.5%; year 2024, 7 + 35 = 42.",
          "  leading   spaces\n\n\n\ttab\r\nCRLF line   \n  trailing   ",
          "naïve café ﬁ e\u0301 Straße 東京 北京 🙂👍🏽 שלום مرحبا",
          "Don't I'm they're we've you'll he'd it's 'quoted'",
          "x<eos>y<pad>z<bos><unk><extract>  <eos>",
          "123456789012345678901234567890", "a", " ", "\n", ""]


def _randomized(model: GPT) -> GPT:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model.eval()


def make_run(path, tokenizer, **config):
    """A random GPT (2 layers, 32 wide, 4 heads of 8, context 32) with `config` options, saved as a run dir."""
    cfg = dict(n_layer=2, n_head=4, n_embd=32, block_size=32, vocab_size=tokenizer.vocab_size + 3) | config
    model = _randomized(GPT(GPTConfig(**cfg)))
    save_run(path, model, tokenizer, model_config=model.config)
    return path


@pytest.fixture(scope="module")
def tokenizers_by_name():
    bpe = {n: BPETokenizer.train(TRAIN_TEXT, vocab_size=330, numbers=n, special_tokens=["<extract>"])
           for n in ("gpt2", "digits", "groups3")}
    chars = {"char": CharTokenizer.train(TRAIN_TEXT[:3], special_tokens=["<extract>"]),
             "char-nobytes": CharTokenizer.train(TRAIN_TEXT[:3], byte_fallback=False)}
    return {**{f"bpe-{n}": t for n, t in bpe.items()}, **chars}


# (test id, tokenizer, GPTConfig options, transformers class the export must load as)
VARIANTS = [
    ("learned-gpt2", "bpe-digits", {}, "GPT2LMHeadModel"),
    ("learned-untied-exactgelu", "bpe-gpt2", dict(tie_embeddings=False, activation="gelu_exact",
                                                  layer_norm_eps=1e-6, mlp_ratio=2), "GPT2LMHeadModel"),
    ("sinusoidal-nobias-relu", "bpe-digits", dict(pos_embedding="sinusoidal", bias=False, activation="relu"),
     "GPT2LMHeadModel"),
    ("rotary-full", "bpe-groups3", dict(pos_embedding="rotary"), "GPTNeoXForCausalLM"),
    # heads of 16 channels, so the partial rotary part (4 channels) still has pairs to reorder
    ("rotary-partial", "bpe-digits", dict(pos_embedding="rotary", n_head=2, rotary_pct=0.25, rotary_base=500.0),
     "GPTNeoXForCausalLM"),
    # 0.35 of 16 channels is 5.6: ours rotates 4 (even, rounded down); NeoX given 0.35 itself would rotate 5
    ("rotary-partial-rounded-nobias-silu-untied", "char", dict(pos_embedding="rotary", n_head=2, rotary_pct=0.35,
                                                               bias=False, activation="silu", tie_embeddings=False),
     "GPTNeoXForCausalLM"),
]


@pytest.mark.parametrize("tok_name,options,hf_class", [v[1:] for v in VARIANTS], ids=[v[0] for v in VARIANTS])
def test_export_logits_equal_lmlab(tmp_path, tokenizers_by_name, tok_name, options, hf_class):
    tok = tokenizers_by_name[tok_name]
    run_dir = make_run(tmp_path / "run", tok, **options)
    out = export_hf(run_dir, tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    assert type(hf).__name__ == hf_class
    model = load_run(run_dir).model
    ids = tok.encode(" ".join(PROBES))[:32]  # the whole context, so every position's encoding is exercised
    batch = torch.tensor([ids, ids[::-1]])
    with torch.no_grad():
        ours, theirs = model(batch)[0], hf(batch).logits
    assert ours.std() > 0.3  # logits far from uniform: a mapping error could not hide under the tolerance
    assert (ours - theirs).abs().max().item() <= 1e-4


def test_rotary_export_generates_like_lmlab_with_hf_kv_cache(tmp_path, tokenizers_by_name):
    tok = tokenizers_by_name["bpe-digits"]
    run_dir = make_run(tmp_path / "run", tok, pos_embedding="rotary", rotary_pct=0.5)
    out = export_hf(run_dir, tmp_path / "hf")
    hf = transformers.AutoModelForCausalLM.from_pretrained(out).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    prompt = "The capital of Braria is"
    ids = hf_tok(prompt, return_tensors="pt").input_ids
    with torch.no_grad():
        hf_out = hf.generate(ids, do_sample=False, max_new_tokens=12, min_new_tokens=12)
    ours = generate(load_run(run_dir).model, tok, prompt, max_new_tokens=12, temperature=0)[0]
    assert ours.tokens == hf_out[0, ids.shape[1]:].tolist()


@pytest.mark.parametrize("tok_name", ["bpe-gpt2", "bpe-digits", "bpe-groups3", "char", "char-nobytes"])
def test_auto_tokenizer_ids_equal_lmlab(tmp_path, tokenizers_by_name, tok_name):
    tok = tokenizers_by_name[tok_name]
    out = export_hf(make_run(tmp_path / "run", tok), tmp_path / "hf")
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    for text in PROBES:
        ids = tok.encode(text)
        assert hf_tok(text)["input_ids"] == ids, text  # the default call adds nothing (no <bos> prepended)
        assert hf_tok.decode(ids) == tok.decode(ids), text
    assert (hf_tok.eos_token, hf_tok.bos_token, hf_tok.pad_token, hf_tok.unk_token) == \
        ("<eos>", "<eos>", "<pad>", "<unk>")  # lmlab starts a document after <eos> (see tokenizer_files)
    assert set(tok.special_tokens) <= set(hf_tok.all_special_tokens)  # <bos>, <extract>: never split, skippable
    assert hf_tok.model_max_length == 32
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["eos_token_id"], cfg["bos_token_id"], cfg["pad_token_id"]) == (tok.eos_id, tok.eos_id, tok.pad_id)


def test_digit_policies_survive_the_export(tmp_path, tokenizers_by_name):
    """What the number policies promise, seen through AutoTokenizer: digits one per token, groups3 chunks of 3."""
    pieces = {}
    for policy in ("digits", "groups3"):
        out = export_hf(make_run(tmp_path / policy, tokenizers_by_name[f"bpe-{policy}"]), tmp_path / f"hf-{policy}")
        hf_tok = transformers.AutoTokenizer.from_pretrained(out)
        pieces[policy] = [hf_tok.decode([i]) for i in hf_tok("year 1234567")["input_ids"]]
    assert pieces["digits"][-7:] == list("1234567")
    digit_tokens = [p for p in pieces["groups3"] if p.isdigit()]
    assert "".join(digit_tokens) == "1234567"
    ends = {sum(len(p) for p in digit_tokens[:k]) for k in range(len(digit_tokens) + 1)}
    assert {3, 6} <= ends  # cut into 123|456|7 before merges, whatever merges the small vocabulary has


def test_refusals_say_why(tmp_path, tokenizers_by_name):
    bpe = tokenizers_by_name["bpe-digits"]
    post = make_run(tmp_path / "post", bpe, norm_position="post")
    with pytest.raises(LmlabError, match="norm_position='post': neither GPT-2 nor GPT-NeoX has post-LN blocks"):
        export_hf(post, tmp_path / "out")
    word = WordTokenizer.train(TRAIN_TEXT)
    with pytest.raises(LmlabError, match="word tokenizer cannot be written as a Hugging Face tokenizer.*<glue>"):
        export_hf(make_run(tmp_path / "word", word), tmp_path / "out")
    learned = make_run(tmp_path / "learned", bpe)
    with pytest.raises(LmlabError, match="pos_embedding='learned' does not fit gpt-neox"):
        export_hf(learned, tmp_path / "out", architecture="gpt-neox")
    with pytest.raises(LmlabError, match="unknown architecture 'llama'"):
        export_hf(learned, tmp_path / "out", architecture="llama")
    (tmp_path / "file").write_text("x")
    with pytest.raises(LmlabError, match="is an existing file"):
        export_hf(learned, tmp_path / "file")
    with pytest.raises(LmlabError, match="is an lmlab run dir"):
        export_hf(learned, post)
    assert not (tmp_path / "out").exists()  # nothing written by a refused export
    assert load_run(post).model_config.norm_position == "post"  # the run dir given as --out is untouched


def test_refuses_non_gpt_models(tmp_path, tokenizers_by_name):
    from lmlab.models.lstm import LSTMConfig, LSTMLM

    tok = tokenizers_by_name["char"]
    model = LSTMLM(LSTMConfig(vocab_size=tok.vocab_size, n_embd=8, n_hidden=8, n_layer=1))
    save_run(tmp_path / "run", model, tok, model_type="lstm", model_config=model.config)
    with pytest.raises(LmlabError, match="model type is 'lstm'; only GPT runs map to a Hugging Face causal LM"):
        export_hf(tmp_path / "run", tmp_path / "out")


def test_reexport_replaces_an_earlier_export(tmp_path, tokenizers_by_name, hf_gpt2_run):
    """A GPT-2-tokenizer export writes vocab.json/merges.txt; exporting another run over it removes them, so
    GPT2Tokenizer cannot pick up a stale vocabulary."""
    out = export_hf_gpt2(hf_gpt2_run, tmp_path / "hf")
    assert (out / "vocab.json").is_file()
    tok = tokenizers_by_name["bpe-groups3"]
    export_hf(make_run(tmp_path / "rotary", tok, pos_embedding="rotary"), out)
    assert not (out / "vocab.json").exists() and not (out / "merges.txt").exists()
    assert transformers.AutoTokenizer.from_pretrained(out)("a 1234")["input_ids"] == tok.encode("a 1234")


@pytest.fixture
def hf_gpt2_run(tmp_path):
    """A run dir imported from a random transformers GPT-2 (GPT-2-style vocab.json/merges.txt tokenizer)."""
    from lmlab.hub import import_hf_gpt2

    from ..hf_gpt2_files import save_random_hf_gpt2

    d = tmp_path / "gpt2-files"
    d.mkdir()
    save_random_hf_gpt2(d, TRAIN_TEXT, n_layer=1, n_embd=32)
    return import_hf_gpt2(d, tmp_path / "gpt2-run")


def test_cli_export_hf(tmp_path, tokenizers_by_name, capsys):
    from lmlab.cli import main

    run_dir = make_run(tmp_path / "run", tokenizers_by_name["bpe-digits"], pos_embedding="rotary")
    assert main(["export", "hf", str(run_dir), "--out", str(tmp_path / "hf")]) == 0
    assert "AutoModelForCausalLM" in capsys.readouterr().out
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["model_type"] == "gpt_neox"
    assert main(["export", "hf-gpt2", str(run_dir), "--out", str(tmp_path / "hf2")]) == 2
    assert "does not fit gpt2" in capsys.readouterr().err
