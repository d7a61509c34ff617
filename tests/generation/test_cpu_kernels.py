"""The oneDNN decode path: same numbers as F.linear, live weights whenever autograd is on, nothing left behind."""

import pytest
import torch
import torch.nn.functional as F

from lmlab.generation import generate
from lmlab.generation.cpu_kernels import (MIN_NEW_TOKENS, PACK_MIN_NEW_TOKENS, decode_rows, onednn_available,
                                          onednn_linears, release_copies)
from lmlab.models import GPT, GPTConfig

pytestmark = pytest.mark.skipif(not onednn_available(torch.nn.Linear(2, 2)),
                                reason="this torch build has no oneDNN (mkldnn) CPU backend")


def small_gpt(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=97)
    return GPT(GPTConfig(**{**cfg, **kw})).eval()


def test_linears_match_f_linear_and_are_restored_on_exit():
    model = small_gpt(bias=True)
    x = torch.randn(3, 5, 32)
    lin = model.blocks[0].mlp.c_fc
    with torch.inference_mode():
        ref = F.linear(x, lin.weight, lin.bias)
        with onednn_linears(model) as on:
            assert on
            assert "forward" in lin.__dict__
            torch.testing.assert_close(lin(x), ref, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(lin(x[:, -1:, :]), ref[:, -1:, :], rtol=1e-5, atol=1e-5)  # a strided view
    assert "forward" not in lin.__dict__  # plain nn.Linear again


@pytest.mark.parametrize("rows", [1, 8])
def test_weights_packed_for_a_row_count_give_the_same_numbers_for_any_row_count(rows):
    """generate() packs the weights for its batch size; the prompt pass (more rows) and a batch-1 beam's
    first step (fewer) must still compute x @ Wᵀ + b."""
    model = small_gpt(bias=True)
    lin = model.blocks[1].mlp.c_proj
    with torch.inference_mode(), onednn_linears(model, rows=rows) as on:
        assert on
        for n in (1, rows, 13):
            x = torch.randn(n, 1, lin.in_features)
            torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)


def test_only_long_batched_decodes_pack_the_weights():
    """Packing costs more than the plain conversion and only batches gain from it."""
    assert decode_rows(1, 10_000) is None
    assert decode_rows(8, PACK_MIN_NEW_TOKENS - 1) is None
    assert decode_rows(8, PACK_MIN_NEW_TOKENS) == 8


def test_copies_are_reused_until_the_weights_change():
    """A second decode skips the conversion; an in-place change (training step, edit) or a new parameter makes a
    fresh copy, so the fast path never computes with stale weights."""
    model = small_gpt(bias=True)
    lin = model.blocks[0].mlp.c_fc
    x = torch.randn(2, lin.in_features)

    def closure_weight():
        with onednn_linears(model):
            w = lin.forward.__closure__
            with torch.inference_mode():
                torch.testing.assert_close(lin(x), F.linear(x, lin.weight, lin.bias), rtol=1e-5, atol=1e-5)
        return {id(c.cell_contents) for c in w if isinstance(c.cell_contents, torch.Tensor)}

    first = closure_weight()
    assert closure_weight() == first  # reused
    with torch.no_grad():
        lin.weight.add_(1.0)  # in place: version counter moves
    changed = closure_weight()
    assert changed.isdisjoint(first)
    with torch.no_grad():
        lin.bias.mul_(3.0)  # the bias too
    assert closure_weight().isdisjoint(changed)
    lin.weight = torch.nn.Parameter(torch.randn_like(lin.weight))  # a new parameter object
    closure_weight()  # (asserts the numbers inside)
    release_copies()


def test_autograd_and_training_use_the_live_weights():
    """A caller that trains while the context is open (e.g. between `stream` pieces) must get real gradients."""
    model = small_gpt()
    lin = model.blocks[0].attn.c_attn
    x = torch.randn(2, 32)
    with onednn_linears(model):
        with torch.no_grad():
            lin.weight.mul_(2.0)  # the snapshot is now stale; grad-enabled calls must not use it
        y = lin(x)
        assert y.requires_grad
        torch.testing.assert_close(y, F.linear(x, lin.weight, lin.bias))
        y.sum().backward()
    assert lin.weight.grad is not None and lin.weight.grad.abs().sum() > 0


def test_hooks_on_linears_still_fire():
    model = small_gpt()
    seen = []
    handle = model.lm_head.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    with torch.inference_mode(), onednn_linears(model):
        model(torch.tensor([[1, 2, 3]]))
    handle.remove()
    assert seen == [torch.Size([1, 3, 97])]


def test_not_used_for_non_fp32_models():
    model = small_gpt().to(torch.bfloat16)
    with onednn_linears(model) as on:
        assert not on


def test_long_greedy_decode_equals_the_plain_path():
    """generate() switches oneDNN on from MIN_NEW_TOKENS new tokens; the greedy tokens must not change."""
    from lmlab.tokenization import CharTokenizer

    tok = CharTokenizer(list("abcdefghijklmnopqrstuvwxyz "))
    model = small_gpt(vocab_size=tok.vocab_size)
    prompts = ["the cat", "a dog sat on"]
    n = MIN_NEW_TOKENS + 8
    fast = generate(model, tok, prompts, max_new_tokens=n, temperature=0)
    # reference: the same decode token by token, each a full forward pass without cache or oneDNN
    for prompt, out in zip(prompts, fast):
        ids = tok.encode(prompt)
        with torch.inference_mode():
            for _ in range(len(out.tokens)):
                logits, _ = model(torch.tensor([ids]))
                ids.append(int(logits[0, -1, :tok.vocab_size].argmax()))
        assert out.tokens == ids[len(tok.encode(prompt)):]


def test_environment_switch_turns_it_off(monkeypatch):
    monkeypatch.setenv("LMLAB_DECODE_ONEDNN", "0")
    model = small_gpt()
    with onednn_linears(model) as on:
        assert not on
        assert "forward" not in model.lm_head.__dict__
