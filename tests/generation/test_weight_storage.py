"""int8 / bf16 weight storage for decoding and scoring: numbers close to fp32, used by every decode and scoring path,
converted once per model and again after an in-place change of a weight (an edit), never used for training."""

import copy

import pytest
import torch
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.generation import (BatchedDecoder, eval_mode, generate, score_text, set_weight_storage, stream,
                              token_logprobs, weight_storage)
from lmlab.generation.weight_storage import _make_product, fbgemm_available, int8_rows, linear_weight_bytes
from lmlab.models import GPT, GPTConfig

# Relative L2 error of a random GPT's logits against fp32. Measured: bf16 ~0.2%; int8 ~2% with fbgemm (its activations
# are quantized to 7 bits per tensor as well) and ~0.5% weight-only. The bounds leave ~2.5x headroom.
TOLERANCE = {"bf16": 0.005, "int8": 0.05}


def random_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=2, n_embd=64, block_size=64, vocab_size=97, bias=True)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def logits(model, x):
    with eval_mode(model):
        return model(x)[0]


def relative_error(a, b):
    return float((a - b).norm() / b.norm())


@pytest.fixture
def tiny(trained):
    """A private copy of the trained tiny char model (the storage setting must not leak into other tests)."""
    model, tok = trained
    return copy.deepcopy(model), tok


@pytest.mark.parametrize("storage", ["bf16", "int8"])
def test_logits_are_close_to_fp32_and_fp32_comes_back_exactly(storage):
    model = random_gpt()
    x = torch.randint(0, 97, (3, 20))
    ref = logits(model, x)
    set_weight_storage(model, storage)
    assert weight_storage(model) == storage
    stored = logits(model, x)
    assert 0 < relative_error(stored, ref) < TOLERANCE[storage]
    assert (stored.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    set_weight_storage(model, "fp32")
    torch.testing.assert_close(logits(model, x), ref, rtol=0, atol=0)


@pytest.mark.parametrize("storage", ["bf16", "int8"])
def test_products_equal_the_rounded_weights(storage):
    """Without fbgemm the product is exactly F.linear with the rounded weights; with fbgemm it is close to it (int8:
    plus the 7-bit activations)."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(48, 40)
    x = torch.randn(5, 48)
    if storage == "int8":
        q, scale = int8_rows(lin.weight.detach())
        rounded = q.float() * scale[:, None]
    else:
        rounded = lin.weight.detach().to(torch.bfloat16).float()
    with torch.inference_mode():
        reference = F.linear(x, rounded, lin.bias)
        torch.testing.assert_close(_make_product(lin, storage, use_fbgemm=False)(x), reference, rtol=0, atol=0)
        if fbgemm_available():
            fast = _make_product(lin, storage, use_fbgemm=True)(x)
            assert relative_error(fast, reference) < (0.02 if storage == "int8" else 1e-6)


def test_int8_rows_are_per_channel_and_survive_a_zero_row():
    w = torch.randn(6, 32) * torch.tensor([1e-3, 1, 10, 0.1, 5, 0])[:, None]
    q, scale = int8_rows(w)
    assert q.dtype == torch.int8 and scale.shape == (6,) and int(q.abs().max()) == 127
    assert torch.all((q.float() * scale[:, None] - w).abs() <= scale[:, None] / 2 + 1e-12)
    assert not q[5].any()


@pytest.mark.parametrize("storage", ["bf16", "int8"])
def test_every_decode_path_gives_the_trained_completion(tiny, storage):
    """generate (batched, beam), stream and the server's BatchedDecoder all compute with the stored weights, and
    the tiny model still says what it learned."""
    model, tok = tiny
    set_weight_storage(model, storage)
    expected = " sat on the mat."
    assert generate(model, tok, "the cat", max_new_tokens=20, temperature=0)[0].text == expected
    assert generate(model, tok, ["the cat", "the cat"], max_new_tokens=20, temperature=0)[1].text == expected
    assert generate(model, tok, "the cat", max_new_tokens=20, num_beams=2)[0].text == expected
    assert "".join(stream(model, tok, "the cat", max_new_tokens=20, temperature=0)) == expected
    decoder = BatchedDecoder(model, tok, max_rows=2)
    decoder.add(tok.encode("the cat"), max_new_tokens=20, temperature=0)
    events = []
    while decoder.active:
        events += decoder.step()
    assert events[-1].text == expected


def test_scoring_uses_the_stored_weights(tiny):
    model, tok = tiny
    ref = score_text(model, tok, "the cat sat on the mat.")
    set_weight_storage(model, "int8")
    stored = score_text(model, tok, "the cat sat on the mat.")
    assert stored.tokens == ref.tokens
    assert stored.total_logprob != ref.total_logprob
    assert stored.total_logprob == pytest.approx(ref.total_logprob, rel=0.05, abs=0.05)
    lp = token_logprobs(model, ref.tokens, batch_size=1)
    assert lp.shape == (len(ref.tokens) - 1,)


def test_conversion_is_kept_until_a_weight_changes_in_place():
    """Two decodes share one conversion; an in-place change of one weight (what an edit does) is seen by the next
    forward, which then gives exactly the numbers of a model converted from scratch."""
    model = random_gpt()
    x = torch.randint(0, 97, (2, 12))
    set_weight_storage(model, "int8")
    mlp = model.blocks[0].mlp.c_proj

    def product_of(module):
        """The converted product the patched forward calls (its closure variable `fast`)."""
        with eval_mode(model):
            forward = module.forward
            return forward.__closure__[forward.__code__.co_freevars.index("fast")].cell_contents

    first = logits(model, x)
    before = product_of(mlp)
    assert product_of(mlp) is before  # the same converted copy, not a second conversion
    with torch.no_grad():  # a rank-one edit of an MLP output matrix, as ROME makes
        mlp.weight += torch.outer(torch.randn(mlp.out_features), torch.randn(mlp.in_features))
    edited = logits(model, x)
    assert product_of(mlp) is not before
    fresh = copy.deepcopy(model)
    set_weight_storage(fresh, "int8")
    assert not torch.allclose(edited, first)
    torch.testing.assert_close(edited, logits(fresh, x), rtol=0, atol=0)


def test_training_still_uses_the_live_fp32_weights():
    model = random_gpt()
    x, y = torch.randint(0, 97, (2, 12)), torch.randint(0, 97, (2, 12))
    model.train()
    _, ref_loss = model(x, y)
    set_weight_storage(model, "int8")
    model.train()
    _, loss = model(x, y)
    assert loss.item() == ref_loss.item()
    loss.backward()
    assert model.lm_head.weight.grad is not None


def test_linear_weight_bytes_per_storage():
    model = random_gpt()  # the output layer shares the token embedding's weight: counted once
    n = sum(m.weight.numel() for m in model.modules() if type(m) is torch.nn.Linear)
    rows = sum(m.weight.shape[0] for m in model.modules() if type(m) is torch.nn.Linear)
    assert linear_weight_bytes(model, "fp32") == 4 * n
    assert linear_weight_bytes(model, "bf16") == 2 * n
    assert linear_weight_bytes(model, "int8") == n + 4 * rows


def test_bad_storage_or_model_is_a_one_line_error():
    with pytest.raises(LmlabError, match="choose one of fp32, bf16, int8"):
        set_weight_storage(random_gpt(), "int4")
    with pytest.raises(LmlabError, match="bfloat16 weights on cpu"):
        set_weight_storage(random_gpt().to(torch.bfloat16), "int8")
