"""GPT model behaviour: shapes, loss, KV-cache equivalence, padding, hook points, configs and presets."""

import dataclasses

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.models import GPT, GPTConfig, KVCache, build_model, get_preset

POS_KINDS = ["learned", "sinusoidal", "rotary"]


def tiny_config(**kw) -> GPTConfig:
    base = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=50, dropout=0.0)
    return GPTConfig(**{**base, **kw})


def make_model(seed=0, **kw) -> GPT:
    torch.manual_seed(seed)
    return GPT(tiny_config(**kw)).eval()


def test_forward_shapes_and_loss_matches_cross_entropy():
    model = make_model()
    idx = torch.randint(0, 50, (3, 10))
    targets = idx.clone()
    targets[:, :4] = -100
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 10, 50) and logits.dtype == torch.float32
    expected = torch.nn.functional.cross_entropy(logits[:, 4:].reshape(-1, 50), idx[:, 4:].reshape(-1))
    assert torch.allclose(loss, expected, atol=1e-6)
    assert model(idx)[1] is None


def test_untrained_loss_is_near_uniform():
    model = make_model()
    _, loss = model(torch.randint(0, 50, (4, 16)), torch.randint(0, 50, (4, 16)))
    assert abs(loss.item() - torch.log(torch.tensor(50.0)).item()) < 0.2


@pytest.mark.parametrize("pos", POS_KINDS)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_kv_cache_decoding_equals_full_forward(pos, norm):
    model = make_model(pos_embedding=pos, norm_position=norm)
    idx = torch.randint(0, 50, (2, 12))
    full, _ = model(idx)
    cache = KVCache.for_model(model, batch_size=2)
    parts = [model(idx[:, :5], kv_cache=cache)[0]]          # prefill 5, then 2 at once, then one at a time
    parts.append(model(idx[:, 5:7], kv_cache=cache)[0])
    for t in range(7, 12):
        parts.append(model(idx[:, t:t + 1], kv_cache=cache)[0])
    assert cache.length == 12
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pos", POS_KINDS)
def test_left_padded_batch_matches_unpadded_rows(pos):
    model = make_model(pos_embedding=pos)
    short, long = torch.randint(3, 50, (4,)), torch.randint(3, 50, (9,))
    pad = 9 - 4
    idx = torch.stack([torch.cat([torch.zeros(pad, dtype=torch.long), short]), long])
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[0, :pad] = 0
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    cache = KVCache.for_model(model, batch_size=2)
    logits, _ = model(idx, attention_mask=mask, position_ids=position_ids, kv_cache=cache)
    torch.testing.assert_close(logits[0, pad:], model(short[None])[0][0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits[1], model(long[None])[0][0], atol=1e-5, rtol=1e-5)
    # one cached decoding step with the padding still masked
    nxt = torch.tensor([[7], [8]])
    mask2 = torch.cat([mask, torch.ones(2, 1, dtype=torch.long)], dim=1)
    step, _ = model(nxt, attention_mask=mask2, position_ids=position_ids[:, -1:] + 1, kv_cache=cache)
    torch.testing.assert_close(step[0, 0], model(torch.cat([short, nxt[0]])[None])[0][0, -1], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(step[1, 0], model(torch.cat([long, nxt[1]])[None])[0][0, -1], atol=1e-5, rtol=1e-5)


def test_hook_names_are_module_paths_in_data_flow_order():
    model = make_model()
    names = model.hook_names()
    assert names[0] == "embed" and names[-2:] == ["final_norm", "logits"]
    assert names[1:13] == ["blocks.0.resid_pre", "blocks.0.attn.q", "blocks.0.attn.k", "blocks.0.attn.v",
                           "blocks.0.attn.pattern", "blocks.0.attn.out", "blocks.0.resid_mid", "blocks.0.mlp.pre",
                           "blocks.0.mlp.post", "blocks.0.mlp.out", "blocks.0.resid_post", "blocks.1.resid_pre"]
    for name in names:
        model.get_submodule(name)  # every name resolves to its hook point


def test_hook_shapes_and_pattern_path_matches_sdpa():
    model = make_model()
    idx = torch.randint(0, 50, (2, 7))
    plain, _ = model(idx)
    seen = {}
    handles = [model.get_submodule(n).register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o.shape))
               for n in model.hook_names()]
    hooked, _ = model(idx)
    for h in handles:
        h.remove()
    torch.testing.assert_close(hooked, plain, atol=1e-5, rtol=1e-5)  # explicit attention = SDPA
    assert seen["embed"] == (2, 7, 32) and seen["blocks.1.resid_mid"] == (2, 7, 32)
    assert seen["blocks.0.attn.q"] == (2, 2, 7, 16) and seen["blocks.0.attn.pattern"] == (2, 2, 7, 7)
    assert seen["blocks.0.mlp.post"] == (2, 7, 128) and seen["logits"] == (2, 7, 50)


def test_hook_can_replace_activation():
    model = make_model()
    idx = torch.randint(0, 50, (1, 5))
    h = model.get_submodule("blocks.1.mlp.post").register_forward_hook(lambda m, i, o: torch.zeros_like(o))
    patched, _ = model(idx)
    h.remove()
    # zeroing every key coefficient removes the MLP's contribution except its output bias
    assert not torch.allclose(patched, model(idx)[0])


def test_pattern_hook_rows_sum_to_one_and_are_causal():
    model = make_model()
    got = []
    h = model.get_submodule("blocks.0.attn.pattern").register_forward_hook(lambda m, i, o: got.append(o))
    model(torch.randint(0, 50, (1, 6)))
    h.remove()
    p = got[0]
    torch.testing.assert_close(p.sum(-1), torch.ones(1, 2, 6))
    assert torch.all(p.triu(1) == 0)


def test_tied_and_untied_embeddings_and_param_counts():
    tied, untied = make_model(), make_model(tie_embeddings=False)
    assert tied.lm_head.weight is tied.wte.weight
    assert untied.lm_head.weight is not untied.wte.weight
    assert untied.num_params(non_embedding=False) - tied.num_params(non_embedding=False) == 50 * 32
    assert tied.num_params() == tied.num_params(non_embedding=False) - 32 * 32  # minus wpe


def test_small_preset_is_gpt2_124m():
    cfg = get_preset("small")
    with torch.device("meta"):
        model = GPT(dataclasses.replace(cfg, vocab_size=50257))
    assert model.num_params(non_embedding=False) == 124_439_808  # GPT-2's published count
    n = model.num_params()
    assert model.flops_per_token() == 6 * n + 12 * 12 * 12 * 64 * 1024


def test_config_errors_are_clear():
    with pytest.raises(LmlabError, match="unknown GPT config key.*n_layers"):
        GPTConfig.from_dict({"n_layers": 3})
    with pytest.raises(LmlabError, match="not divisible"):
        GPTConfig(n_embd=30, n_head=4)
    with pytest.raises(LmlabError, match="pos_embedding"):
        GPTConfig(pos_embedding="alibi")
    with pytest.raises(LmlabError, match="tiny, small, medium, large"):
        get_preset("huge")
    with pytest.raises(LmlabError, match="unknown model type"):
        build_model("lstmx", {})


def test_rotary_is_a_rotation_that_makes_scores_depend_only_on_the_offset():
    # RoPE's defining properties: it keeps each vector's norm, and q_m · k_n depends on m − n only.
    from lmlab.models.gpt import apply_rotary, rotary_tables

    cos, sin = rotary_tables(40, 8, 10000.0)
    q, k = torch.randn(8, dtype=torch.float64), torch.randn(8, dtype=torch.float64)
    cos, sin = cos.double(), sin.double()

    def rot(x, pos):
        return apply_rotary(x, cos[pos], sin[pos])

    assert torch.allclose(rot(q, 7).norm(), q.norm())
    assert torch.allclose(rot(q, 9) @ rot(k, 4), rot(q, 30) @ rot(k, 25))
    assert not torch.allclose(rot(q, 9) @ rot(k, 4), rot(q, 9) @ rot(k, 5))
    # Channel pair (0, 1) at position 1 turns by angle 1 (base⁰ = 1): (1, 0) → (cos 1, sin 1).
    e0 = torch.zeros(8, dtype=torch.float64)
    e0[0] = 1.0
    one = torch.tensor(1.0, dtype=torch.float64)
    assert torch.allclose(rot(e0, 1)[[0, 1]], torch.stack([one.cos(), one.sin()]))


def test_partial_rotary_turns_only_the_first_channels_and_keeps_the_cache_exact():
    # GPT-NeoX's rotary_pct: with 0.5 of a 16-channel head, channels 0-7 of q and k turn with position and 8-15 are
    # the plain projections (content only); decoding with the KV cache still equals the full forward pass.
    model = make_model(pos_embedding="rotary", rotary_pct=0.5)
    assert model.config.rotary_dims == 8
    idx = torch.randint(0, 50, (1, 9))
    seen = {}
    model.blocks[0].attn.q.register_forward_hook(lambda m, i, o: seen.__setitem__("q", o))
    with torch.no_grad():
        full, _ = model(idx)
        x = model.blocks[0].ln_1(model.wte(idx))
        raw = model.blocks[0].attn.c_attn(x).view(1, 9, 3, 2, 16)[:, :, 0].transpose(1, 2)  # (B,H,T,d) queries
    torch.testing.assert_close(seen["q"][..., 8:], raw[..., 8:])
    assert not torch.allclose(seen["q"][:, :, 1:, :8], raw[:, :, 1:, :8])  # position 0 turns by angle 0
    torch.testing.assert_close(seen["q"][:, :, 0], raw[:, :, 0])
    cache = KVCache.for_model(model, batch_size=1)
    parts = [model(idx[:, :4], kv_cache=cache)[0]] + [model(idx[:, t:t + 1], kv_cache=cache)[0] for t in range(4, 9)]
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)
    with pytest.raises(LmlabError, match="rotary_pct"):
        tiny_config(pos_embedding="rotary", rotary_pct=0.05)
    with pytest.raises(LmlabError, match="rotary_pct"):
        tiny_config(rotary_pct=1.5)


def test_config_roundtrip_and_registry():
    cfg = tiny_config(pos_embedding="rotary", activation="silu", bias=False)
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg
    model = build_model("gpt", cfg.to_dict())
    assert isinstance(model, GPT) and model.config == cfg


def test_context_overflow_is_an_error():
    model = make_model()
    with pytest.raises(LmlabError, match="block_size 32"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_last_only_logits_equal_last_position():
    model = make_model()
    idx = torch.randint(0, 50, (2, 9))
    full, _ = model(idx)
    last, _ = model(idx, last_only=True)
    assert last.shape == (2, 1, 50)
    torch.testing.assert_close(last[:, 0], full[:, -1])


@pytest.mark.parametrize("pos", POS_KINDS)
def test_forward_from_layer_resumes_the_full_forward(pos):
    from lmlab.inspection import run_with_cache

    model = make_model(pos_embedding=pos, n_layer=3)
    idx = torch.randint(0, 50, (2, 9))
    full, cache = run_with_cache(model, idx, names=["embed", "blocks.0.resid_post", "blocks.2.resid_post"])
    # From the embeddings, from the middle, and from after the last block (final norm only).
    for layer, resid in ((0, cache["embed"]), (1, cache["blocks.0.resid_post"]), (3, cache["blocks.2.resid_post"])):
        logits = model.lm_head(model.forward_from_layer(resid, layer))
        torch.testing.assert_close(logits, full, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="out of range"):
        model.forward_from_layer(cache["embed"], 4)


@pytest.mark.parametrize("pos", POS_KINDS)
def test_frozen_prefix_continuations_equal_the_full_forward(pos):
    """Prefixes of different lengths, left-padded, go through the blocks once; continuations run on top of their
    frozen keys/values (twice, with gradients) and give the full forward pass's logits."""
    from lmlab.models import FrozenPrefix
    from lmlab.inspection import run_with_cache

    model = make_model(pos_embedding=pos, n_layer=3)
    idx = torch.randint(0, 50, (2, 10))
    full, cache = run_with_cache(model, idx, names=["blocks.0.resid_post"])
    resid = cache["blocks.0.resid_post"]
    cut = torch.tensor([6, 4])                           # row i's prefix is positions 0..cut_i−1
    P, S = 6, 4
    slot = torch.arange(P)[None] - (P - cut)[:, None]
    real = slot >= 0
    prefix = torch.where(real[..., None], resid[torch.arange(2)[:, None], slot.clamp(min=0)], 0.0)
    kv = KVCache.for_model(model, 2, max_len=P)
    model.forward_from_layer(prefix, 1, attention_mask=real.long(), position_ids=slot.clamp(min=0), kv_cache=kv)
    frozen = FrozenPrefix(kv)
    src = cut[:, None] + torch.arange(S)[None]
    mask = torch.cat([real.long(), torch.ones(2, S, dtype=torch.long)], 1)
    for _ in range(2):                                   # the prefix is reused, not extended
        x = resid[torch.arange(2)[:, None], src].clone().requires_grad_(True)
        out = model.lm_head(model.forward_from_layer(x, 1, attention_mask=mask, position_ids=src, kv_cache=frozen))
        torch.testing.assert_close(out, full[torch.arange(2)[:, None], src], atol=1e-5, rtol=1e-5)
        out.sum().backward()
        assert x.grad is not None and frozen.length == P


def test_explicit_attention_path_with_cache_and_padding():
    model = make_model(pos_embedding="rotary")
    idx = torch.randint(3, 50, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.long)
    mask[0, :3] = 0
    pos = (mask.cumsum(-1) - 1).clamp(min=0)

    def run():
        cache = KVCache.for_model(model, batch_size=2)
        a, _ = model(idx[:, :5], attention_mask=mask[:, :5], position_ids=pos[:, :5], kv_cache=cache)
        b, _ = model(idx[:, 5:], attention_mask=mask, position_ids=pos[:, 5:], kv_cache=cache)
        return torch.cat([a, b], dim=1)

    fused = run()
    handles = [model.get_submodule(f"blocks.{i}.attn.pattern").register_forward_hook(lambda m, i, o: None)
               for i in range(2)]
    explicit = run()
    for h in handles:
        h.remove()
    torch.testing.assert_close(explicit, fused, atol=1e-5, rtol=1e-5)


def test_gelu_exact_is_the_erf_form():
    """activation="gelu_exact" is nanoGPT's/BERT's nn.GELU(); "gelu" stays GPT-2's tanh approximation."""
    x = torch.linspace(-4, 4, 101)
    exact = GPT(tiny_config(activation="gelu_exact")).blocks[0].mlp.act
    tanh = GPT(tiny_config(activation="gelu")).blocks[0].mlp.act
    torch.testing.assert_close(exact(x), 0.5 * x * (1 + torch.erf(x / 2 ** 0.5)))
    assert not torch.allclose(tanh(x), exact(x), atol=1e-6, rtol=0)
    with pytest.raises(LmlabError, match="gelu_exact"):
        tiny_config(activation="gelu_erf")


def test_bf16_autocast_on_cpu_attends_in_float32_and_trains():
    """Under CPU bf16 autocast attention runs in fp32 (its bf16 CPU kernel is slow): the output is bf16, equals fp32
    attention of the same bf16 inputs, and the whole model's logits and gradients stay close to fp32's."""
    from lmlab.models.gpt import attention

    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 2, 9, 16).bfloat16() for _ in range(3))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = attention(q, k, v, None, True, 0.0)
    want = torch.nn.functional.scaled_dot_product_attention(q.float(), k.float(), v.float(), is_causal=True)
    assert y.dtype == torch.bfloat16 and torch.equal(y, want.bfloat16())

    model = make_model(pos_embedding="rotary").train()
    idx = torch.randint(0, 50, (3, 12))
    _, loss32 = model(idx, idx)
    loss32.backward()
    g32 = model.blocks[0].attn.c_attn.weight.grad.clone()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, loss16 = model(idx, idx)
    loss16.backward()
    g16 = model.blocks[0].attn.c_attn.weight.grad
    assert logits.dtype == torch.bfloat16
    assert abs(loss16.item() - loss32.item()) < 0.02
    assert torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0) > 0.99
