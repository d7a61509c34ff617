"""Hooks API: captured activations equal values recomputed by hand, patching changes logits as it must, hooks are
always removed, unknown names are refused with the list of valid ones."""

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.inspection import (hooked, patch_positions, read_activations, resolve_hook_names, run_with_cache,
                              run_with_hooks)

IDS = [5, 9, 40, 41, 7, 100, 12]


def no_hooks_left(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_cache_equals_values_recomputed_by_hand(random_model):
    m = random_model
    last = m.config.n_layer - 1
    logits, cache = run_with_cache(m, IDS)
    assert set(cache) == set(m.hook_names())
    with torch.no_grad():
        plain, _ = m(torch.tensor([IDS]))
        # resid_post of the last layer → final norm → unembedding is the output
        assert torch.allclose(m.lm_head(m.ln_f(cache[f"blocks.{last}.resid_post"])), logits, atol=1e-5)
        assert torch.allclose(m.ln_f(cache[f"blocks.{last}.resid_post"]), cache["final_norm"], atol=1e-6)
        for l in range(m.config.n_layer):
            b = f"blocks.{l}."
            # pre-LN block: resid_mid = resid_pre + attn.out; resid_post = resid_mid + mlp.out
            assert torch.allclose(cache[b + "resid_pre"] + cache[b + "attn.out"], cache[b + "resid_mid"], atol=1e-6)
            assert torch.allclose(cache[b + "resid_mid"] + cache[b + "mlp.out"], cache[b + "resid_post"], atol=1e-6)
            # the MLP output is the values weighted by the key coefficients: Σ_i m_i v_i + bias
            mlp = m.blocks[l].mlp
            assert torch.allclose(mlp.c_proj(cache[b + "mlp.post"]), cache[b + "mlp.out"], atol=1e-6)
            assert cache[b + "attn.pattern"].shape == (1, m.config.n_head, len(IDS), len(IDS))
    # caching the attention pattern switches to explicit attention: same logits up to rounding
    assert torch.allclose(plain, logits, atol=1e-5)
    assert no_hooks_left(m)


def test_cache_selects_names_by_list_and_predicate(random_model):
    _, cache = run_with_cache(random_model, IDS, ["blocks.1.mlp.post", "embed"])
    assert list(cache) == ["embed", "blocks.1.mlp.post"]
    _, cache = run_with_cache(random_model, IDS, lambda n: n.endswith("resid_post"))
    assert list(cache) == [f"blocks.{l}.resid_post" for l in range(random_model.config.n_layer)]
    _, cache = run_with_cache(random_model, torch.tensor([IDS, IDS[::-1]]), ["logits"])
    assert cache["logits"].shape[:2] == (2, len(IDS))


def test_read_activations_stops_after_the_last_name_read(random_model):
    """Reading an early layer gives run_with_cache's values without running the later layers."""
    m = random_model
    _, full = run_with_cache(m, IDS, ["embed", "blocks.0.mlp.post"])
    fired = []
    with hooked(m, {f"blocks.{l}.resid_post": lambda a, name: fired.append(name) for l in range(m.config.n_layer)}):
        got = read_activations(m, IDS, ["blocks.0.mlp.post", "embed"])
    assert list(got) == ["embed", "blocks.0.mlp.post"]
    for name in got:
        assert torch.equal(got[name], full[name])
    assert fired == []  # blocks.0.resid_post comes after blocks.0.mlp.post: nothing later ran
    assert no_hooks_left(m)
    with pytest.raises(LmlabError, match="unknown hook name"):
        read_activations(m, IDS, ["blocks.99.mlp.post"])


def test_patching_replaces_activations(random_model):
    m = random_model
    last = m.config.n_layer - 1
    _, cache = run_with_cache(m, IDS)
    # zero-ablate the last MLP: the output becomes the unembedded resid_mid of the last block
    logits = run_with_hooks(m, IDS, {f"blocks.{last}.mlp.out": lambda x, name: torch.zeros_like(x)})
    with torch.no_grad():
        expected = m.lm_head(m.ln_f(cache[f"blocks.{last}.resid_mid"]))
    assert torch.allclose(logits, expected, atol=1e-5)
    # patch one position of the last residual stream: only that position's logits change, to the patched ones
    new = torch.randn(1, m.config.n_embd)
    logits2 = run_with_hooks(m, IDS, {f"blocks.{last}.resid_post": patch_positions(new, [3])})
    with torch.no_grad():
        assert torch.allclose(logits2[0, 3], m.lm_head(m.ln_f(new))[0], atol=1e-5)
    clean = cache["logits"]
    assert torch.allclose(logits2[0, :3], clean[0, :3], atol=1e-6)
    assert torch.allclose(logits2[0, 4:], clean[0, 4:], atol=1e-6)
    # a read-only hook (returns None) changes nothing
    seen = []
    logits3 = run_with_hooks(m, IDS, {"blocks.0.mlp.post": lambda x, name: seen.append(name)})
    assert seen == ["blocks.0.mlp.post"] and torch.allclose(logits3, clean, atol=1e-6)
    assert no_hooks_left(m)


def test_hooks_removed_after_exception_and_context(random_model):
    def boom(x, name):
        raise RuntimeError("inside hook")

    with pytest.raises(RuntimeError, match="inside hook"):
        run_with_hooks(random_model, IDS, {"blocks.0.attn.out": boom, "embed": lambda x, n: None})
    assert no_hooks_left(random_model)
    with pytest.raises(KeyError):
        with hooked(random_model, {"blocks.1.mlp.out": lambda x, n: x * 0}):
            assert random_model.get_submodule("blocks.1.mlp.out")._forward_hooks
            raise KeyError("user code failed")
    assert no_hooks_left(random_model)


def test_gradients_flow_through_patches_when_asked(random_model):
    delta = torch.zeros(random_model.config.n_embd, requires_grad=True)
    logits = run_with_hooks(random_model, IDS, {"blocks.1.mlp.out": lambda x, n: x + delta}, grad=True)
    logits[0, -1, 3].backward()
    assert delta.grad is not None and delta.grad.abs().sum() > 0


def test_unknown_hook_name_lists_valid_names(random_model):
    with pytest.raises(LmlabError) as e:
        run_with_cache(random_model, IDS, ["blocks.7.mlp.post"])
    msg = str(e.value)
    assert "'blocks.7.mlp.post'" in msg and "blocks.{0..2}.mlp.post" in msg and "final_norm" in msg
    assert "\n" not in msg
    with pytest.raises(LmlabError):
        run_with_hooks(random_model, IDS, {"mlp.post": lambda x, n: None})
    assert no_hooks_left(random_model)
    assert resolve_hook_names(random_model, "logits") == ["logits"]
