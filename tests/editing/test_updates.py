"""The linear algebra of ROME and MEMIT on random matrices, and the shortened pass of δ's search (small GPT)."""

import torch

from lmlab.editing import memit_update, rank_one_update


def _spd(n: int, gen: torch.Generator) -> torch.Tensor:
    a = torch.randn(3 * n, n, generator=gen, dtype=torch.float64)
    return a.T @ a / (3 * n)


def test_rank_one_update_maps_key_to_value_exactly():
    gen = torch.Generator().manual_seed(0)
    D, H = 8, 32
    W = torch.randn(D, H, generator=gen, dtype=torch.float64)
    b = torch.randn(D, generator=gen, dtype=torch.float64)
    C = _spd(H, gen)
    k = torch.randn(H, generator=gen, dtype=torch.float64)
    v = torch.randn(D, generator=gen, dtype=torch.float64)
    delta = rank_one_update(W, b, C, k, v, ridge=0.0)
    assert delta.shape == W.shape
    torch.testing.assert_close((W + delta) @ k + b, v, rtol=1e-9, atol=1e-9)
    assert torch.linalg.matrix_rank(delta) == 1


def test_rank_one_update_leaves_c_inverse_orthogonal_keys_untouched():
    gen = torch.Generator().manual_seed(1)
    D, H = 8, 32
    W = torch.randn(D, H, generator=gen, dtype=torch.float64)
    C = _spd(H, gen)
    k = torch.randn(H, generator=gen, dtype=torch.float64)
    delta = rank_one_update(W, None, C, k, torch.randn(D, generator=gen, dtype=torch.float64), ridge=0.0)
    u = torch.linalg.solve(C, k)
    for _ in range(5):
        j = torch.randn(H, generator=gen, dtype=torch.float64)
        j = j - (u @ j) / (u @ u) * u            # now (C⁻¹k)ᵀ j = 0
        torch.testing.assert_close((W + delta) @ j, W @ j, rtol=1e-9, atol=1e-9)


def test_memit_update_maps_new_keys_to_their_residuals_when_c_weighs_little():
    gen = torch.Generator().manual_seed(2)
    D, H, n = 6, 24, 4
    C = _spd(H, gen)
    K = torch.randn(n, H, generator=gen, dtype=torch.float64)
    R = torch.randn(n, D, generator=gen, dtype=torch.float64)
    delta = memit_update(C, K, R, mom2_update_weight=1e-8, ridge=0.0)
    torch.testing.assert_close(K @ delta.T, R, rtol=1e-4, atol=1e-4)
    # With a heavy C the update shrinks: old keys are protected.
    heavy = memit_update(C, K, R, mom2_update_weight=1e4, ridge=0.0)
    assert heavy.norm() < 0.01 * delta.norm()


def test_rank_one_update_can_hit_another_key_exactly_along_the_same_direction():
    """ROME's code: direction C⁻¹k* from the averaged key, exact on the bare prompt's key."""
    gen = torch.Generator().manual_seed(3)
    D, H = 8, 32
    W = torch.randn(D, H, generator=gen, dtype=torch.float64)
    b = torch.randn(D, generator=gen, dtype=torch.float64)
    C = _spd(H, gen)
    k_star = torch.randn(H, generator=gen, dtype=torch.float64)
    k_bare = k_star + 0.3 * torch.randn(H, generator=gen, dtype=torch.float64)
    v = torch.randn(D, generator=gen, dtype=torch.float64)
    delta = rank_one_update(W, b, C, k_star, v, ridge=0.0, at=k_bare)
    torch.testing.assert_close((W + delta) @ k_bare + b, v, rtol=1e-9, atol=1e-9)
    u = torch.linalg.solve(C, k_star)
    j = torch.randn(H, generator=gen, dtype=torch.float64)
    j = j - (u @ j) / (u @ u) * u
    torch.testing.assert_close(delta @ j, torch.zeros(D, dtype=torch.float64), rtol=0, atol=1e-9)


def test_protected_keys_move_far_less_and_the_edited_key_still_maps_exactly():
    """ROME's prompt protection: keys added to C (the edit prompt's positions after the subject) are nearly left
    alone by the update, while the bare prompt's key still maps to the new value exactly."""
    from lmlab.editing.rome import protected_moments

    gen = torch.Generator().manual_seed(3)
    D, H = 8, 32
    W = torch.randn(D, H, generator=gen, dtype=torch.float64)
    C = _spd(H, gen)
    k = torch.randn(H, generator=gen, dtype=torch.float64)
    v = torch.randn(D, generator=gen, dtype=torch.float64)
    later = k + 0.5 * torch.randn(3, H, generator=gen, dtype=torch.float64)  # keys that overlap the edited one
    plain = rank_one_update(W, None, C, k, v, ridge=0.0)
    protected = rank_one_update(W, None, protected_moments(C, later, 10.0), k, v, ridge=0.0)
    torch.testing.assert_close((W + protected) @ k, v, rtol=1e-9, atol=1e-9)
    moved_plain = (plain @ later.T).norm()
    moved_protected = (protected @ later.T).norm()
    assert moved_protected < 0.5 * moved_plain, (moved_protected, moved_plain)
    assert torch.equal(protected_moments(C, later, 0.0), C)
    assert torch.equal(protected_moments(C, later[:0], 1.0), C)


def test_resumed_delta_logits_equal_the_whole_model_with_delta_added():
    """δ's search reads logits from a pass over only what δ changes (frozen prefix, or whole rows when there is
    no prefix); both must equal the whole model with δ added to the residual stream at each row's subject token."""
    from lmlab.editing.values import _resumed_logits
    from lmlab.inspection import run_with_cache, run_with_hooks
    from lmlab.models import GPT, GPTConfig

    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=3, n_head=2, n_embd=32, block_size=32, vocab_size=50, dropout=0.0,
                          pos_embedding="rotary")).eval()
    ids = torch.randint(0, 50, (3, 12))
    delta = torch.randn(32, requires_grad=True)
    read_rows, read_cols = torch.tensor([0, 0, 1, 2, 2]), torch.tensor([7, 9, 5, 2, 11])
    _, cache = run_with_cache(model, ids, names=["blocks.0.resid_post"])
    rows = torch.arange(3)
    for pos in (torch.tensor([4, 5, 2]), torch.zeros(3, dtype=torch.long)):   # frozen prefix; no prefix at all

        def add(act, name):
            return act.index_put((rows, pos), delta.expand(3, 32), accumulate=True)
        want = run_with_hooks(model, ids, {"blocks.0.resid_post": add}, grad=True)[read_rows, read_cols]
        got = _resumed_logits(model, cache["blocks.0.resid_post"], 1, pos, read_rows, read_cols, delta)()
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
        g_got, = torch.autograd.grad(got.square().sum(), delta)
        g_want, = torch.autograd.grad(want.square().sum(), delta)
        torch.testing.assert_close(g_got, g_want, atol=1e-4, rtol=1e-4)
