"""KV cache storage fp32 | bf16 | int8: fp32 stays exactly as before, bf16/int8 decode close to it with 1/2 and ~1/4
of the bytes, in every decode path (generate, stream, beam search, BatchedDecoder) and on `lmlab sample`."""

import copy

import pytest
import torch

from lmlab.cli import main
from lmlab.errors import LmlabError
from lmlab.generation import (BatchedDecoder, generate, kv_cache_storage, set_kv_cache_storage, stream)
from lmlab.models import GPT, GPTConfig, KVCache

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Relative L2 error of a random tiny GPT's logits, decoded through the cache, against the fp32 cache. Measured:
# bf16 ~0.04%, int8 ~0.1%; the bounds leave ~4x headroom.
TOLERANCE = {"bf16": 0.002, "int8": 0.005}


def random_gpt(pos="learned"):
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=97, pos_embedding=pos)).eval()


def cached_logits(model, x, storage, prompt=20):
    """Logits (B,T,V) of x (B,T): the first `prompt` tokens in one pass, then one token per pass, through a cache."""
    cache = KVCache.for_model(model, x.shape[0], x.shape[1], storage=storage)
    with torch.inference_mode():
        out = [model(x[:, :prompt], kv_cache=cache)[0]]
        out += [model(x[:, t:t + 1], kv_cache=cache)[0] for t in range(prompt, x.shape[1])]
    return torch.cat(out, dim=1)


@pytest.fixture
def tiny(trained):
    """A private copy of the trained tiny char model (the storage setting must not leak into other tests)."""
    model, tok = trained
    return copy.deepcopy(model), tok


def test_fp32_is_the_default_and_reads_the_stored_tensor_itself(tiny):
    """The default cache holds the model's dtype and hands attention its own tensor (no copy, no rounding), so the
    numbers are those of before; setting "fp32" explicitly changes nothing."""
    model, tok = tiny
    assert kv_cache_storage(model) == "fp32"
    cache = KVCache.for_model(model, 2, 8)
    k, v = torch.randn(2, 2, 3, 16), torch.randn(2, 2, 3, 16)
    got_k, got_v = cache.update(0, k, v)
    assert cache.k.dtype == torch.float32 and got_k.data_ptr() == cache.k.data_ptr()
    assert torch.equal(got_k, k) and torch.equal(got_v, v)
    before = generate(model, tok, ["the cat", "on the"], max_new_tokens=12, temperature=0, return_logprobs=True)
    set_kv_cache_storage(model, "fp32")
    after = generate(model, tok, ["the cat", "on the"], max_new_tokens=12, temperature=0, return_logprobs=True)
    assert [(c.tokens, c.token_logprobs) for c in after] == [(c.tokens, c.token_logprobs) for c in before]


@pytest.mark.parametrize("pos", ["learned", "rotary"])
@pytest.mark.parametrize("storage", ["bf16", "int8"])
def test_logits_through_a_rounded_cache_are_close_to_fp32(storage, pos):
    model = random_gpt(pos)
    x = torch.randint(0, 97, (3, 40))
    ref, got = cached_logits(model, x, "fp32"), cached_logits(model, x, storage)
    error = float((got - ref).norm() / ref.norm())
    assert 0 < error < TOLERANCE[storage]
    assert (got.argmax(-1) == ref.argmax(-1)).float().mean() > 0.95


def test_int8_rounds_each_vector_to_half_a_step_of_its_own_scale():
    cache = KVCache(1, 2, 3, 5, 8, storage="int8")
    k = torch.randn(2, 3, 5, 8) * torch.tensor([1e-3, 1.0, 50.0])[None, :, None, None]  # heads of very unlike size
    v = torch.zeros(2, 3, 5, 8)  # all-zero vectors read back as zeros
    cache.update(0, k, v)
    got_k, got_v = cache.read((0, slice(None), slice(None), slice(None, 5)))
    step = k.abs().amax(-1, keepdim=True) / 127
    assert ((got_k - k).abs() <= step / 2 * 1.0001).all()
    assert torch.equal(got_v, v) and cache.k.dtype == torch.int8 and got_k.dtype == torch.float32
    attended_k, _ = cache.attended(0, 2, 5)  # what attention gets: the same numbers, in the reused scratch buffer
    assert torch.equal(attended_k, got_k) and attended_k.data_ptr() == cache.attended(0, 1, 3)[0].data_ptr()


def test_cache_bytes_are_a_half_and_a_quarter_plus_scales():
    shape = dict(n_layer=3, batch_size=4, n_head=2, max_len=10, head_dim=16)
    nbytes = {s: KVCache(*shape.values(), storage=s).nbytes() for s in ("fp32", "bf16", "int8")}
    vectors = 2 * 3 * 4 * 2 * 10  # keys and values: one scale each per (layer, row, head, position)
    assert nbytes["fp32"] == vectors * 16 * 4
    assert nbytes["bf16"] == nbytes["fp32"] // 2
    assert nbytes["int8"] == nbytes["fp32"] // 4 + vectors * 4


@pytest.mark.parametrize("storage", ["bf16", "int8"])
def test_trained_model_continues_as_with_fp32_in_every_decode_path(tiny, storage):
    """generate (one row and a left-padded batch), stream, beam search (which reorders cache rows) and continuous
    batching (which moves rows and columns in the shared cache) give the trained greedy continuation."""
    model, tok = tiny
    prompts = ["the cat", "on the", "the mat"]
    ref = generate(model, tok, prompts, max_new_tokens=16, temperature=0)
    set_kv_cache_storage(model, storage)
    got = generate(model, tok, prompts, max_new_tokens=16, temperature=0)
    agree = [a == b for r, g in zip(ref, got) for a, b in zip(r.tokens, g.tokens)]
    assert sum(agree) / len(agree) > 0.9
    assert got[0].text == ref[0].text == " sat on the mat."
    assert "".join(stream(model, tok, "the cat", max_new_tokens=16, temperature=0)) == " sat on the mat."
    [beam] = generate(model, tok, "the cat", max_new_tokens=16, num_beams=3)
    assert beam.text == " sat on the mat."
    decoder = BatchedDecoder(model, tok, max_rows=2)
    assert decoder.cache.store.storage == storage
    ids = {decoder.add(tok.encode(p), max_new_tokens=16, temperature=0)[0]: p for p in ["t", "the cat", "on the"]}
    tokens = {}
    while decoder.active:
        for e in decoder.step():
            tokens.setdefault(e.seq_id, []).append(e.token)
    for seq_id, prompt in ids.items():
        assert tokens[seq_id] == generate(model, tok, prompt, max_new_tokens=16, temperature=0)[0].tokens


def test_unknown_storage_is_an_error(tiny):
    model, _ = tiny
    message = "unknown KV cache storage 'fp8'; choose one of fp32, bf16, int8"
    with pytest.raises(LmlabError, match=message):
        set_kv_cache_storage(model, "fp8")
    with pytest.raises(LmlabError, match=message):
        KVCache.for_model(model, 1, storage="fp8")


@pytest.mark.parametrize("kv_cache", ["bf16", "int8"])
def test_sample_with_a_rounded_kv_cache_gives_the_trained_completion(run_dir, capsys, kv_cache):
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "20",
                 "--kv-cache", kv_cache]) == 0
    assert capsys.readouterr().out == "the cat sat on the mat.\n"


@pytest.mark.parametrize("verb", ["sample", "serve"])
def test_unknown_kv_cache_is_a_one_line_error(run_dir, capsys, verb):
    argv = [verb, str(run_dir)] + (["--prompt", "the"] if verb == "sample" else []) + ["--kv-cache", "fp8"]
    assert main(argv) == 2  # serve: refused before loading the model or listening
    assert capsys.readouterr().err == "lmlab: error: unknown KV cache storage 'fp8'; choose one of fp32, bf16, int8\n"
