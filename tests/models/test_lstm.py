"""LSTM and bidirectional LSTM LMs: shapes and options, carried state, the ELMo objective, what each direction may see,
contextual vectors from a run dir, and generation without a KV cache."""

import pytest
import torch
import torch.nn.functional as F

from lmlab.errors import LmlabError
from lmlab.models.lstm import BiLSTMLM, LSTMConfig, LSTMLM, export_contextual_vectors

V = 23


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small(**kw) -> LSTMConfig:
    return LSTMConfig(**{**dict(vocab_size=V, n_embd=8, n_hidden=12, n_layer=2, dropout=0.0, block_size=16), **kw})


def test_lstm_logits_loss_and_options():
    torch.manual_seed(0)
    idx = torch.randint(0, V, (3, 7))
    model = LSTMLM(small(proj_size=8, tie_embeddings=True))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 7, V)
    assert loss.item() == pytest.approx(F.cross_entropy(logits.view(-1, V), idx.view(-1)).item())
    assert model.head.lm_head.weight is model.wte.weight  # tied: one matrix in and out
    assert model.head.proj.out_features == 8
    with pytest.raises(LmlabError, match="tie_embeddings"):
        LSTMConfig(vocab_size=V, n_embd=8, n_hidden=12, tie_embeddings=True)


def test_carried_state_continues_the_previous_batch_in_training_only():
    torch.manual_seed(0)
    model = LSTMLM(small(carry_state=True))
    assert model.wants_contiguous_streams
    seq = torch.randint(0, V, (2, 12))
    model.train()
    model(seq[:, :6])
    carried, _ = model(seq[:, 6:])  # starts from the state the first half ended in
    model.eval()
    whole, _ = model(seq)  # eval: one pass from a zero state over both halves
    assert torch.allclose(carried, whole[:, 6:], atol=1e-5)
    assert all(not h.requires_grad for h, _ in model._carried)  # detached: gradients stop at the batch boundary
    fresh, _ = model(seq[:, 6:])  # eval mode ignores the carried state
    assert not torch.allclose(fresh, whole[:, 6:], atol=1e-3)
    with pytest.raises(LmlabError, match="carry"):
        BiLSTMLM(small(carry_state=True))


def test_bilstm_loss_is_the_mean_of_both_directions():
    torch.manual_seed(0)
    model = BiLSTMLM(small()).eval()
    idx = torch.randint(0, V, (2, 9))
    targets = torch.randint(0, V, (2, 9))
    logits, loss = model(idx, targets)
    forward = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))
    backward = F.cross_entropy(model.backward_logits(idx)[:, 1:].reshape(-1, V), idx[:, :-1].reshape(-1))
    assert loss.item() == pytest.approx(0.5 * (forward + backward).item(), rel=1e-5)
    per_direction = model.direction_losses(idx, targets)
    assert per_direction["forward"].item() == pytest.approx(forward.item(), rel=1e-5)
    assert per_direction["backward"].item() == pytest.approx(backward.item(), rel=1e-5)


def test_bilstm_directions_do_not_see_their_future():
    torch.manual_seed(0)
    model = BiLSTMLM(small()).eval()
    h = model.config.n_hidden
    a = torch.randint(0, V, (1, 10))
    t = 4
    later = a.clone()
    later[0, t + 1:] = (later[0, t + 1:] + 1) % V  # change only what comes after t
    earlier = a.clone()
    earlier[0, :t] = (earlier[0, :t] + 1) % V  # change only what comes before t
    base, after, before = (model.contextual_vectors(x) for x in (a, later, earlier))
    assert len(base) == model.config.n_layer and base[0].shape == (1, 10, 2 * h)
    for layer in range(model.config.n_layer):
        # forward half at ≤ t ignores the future; backward half at ≥ t ignores the past
        assert torch.allclose(base[layer][0, :t + 1, :h], after[layer][0, :t + 1, :h])
        assert torch.allclose(base[layer][0, t:, h:], before[layer][0, t:, h:])
        # and each does depend on its own side
        assert not torch.allclose(base[layer][0, t + 1:, h:], after[layer][0, t + 1:, h:])
        assert not torch.allclose(base[layer][0, :t, :h], before[layer][0, :t, :h])
    # the backward LM's prediction of x_{t-1} at position t uses only x_{≥t}
    assert torch.allclose(model.backward_logits(a)[0, t:], model.backward_logits(earlier)[0, t:])


def test_contextual_vectors_and_generation_from_run_dirs(tmp_path):
    from lmlab.checkpoint import load_run, save_run
    from lmlab.generation import generate, score_text
    from lmlab.tokenization import CharTokenizer

    tok = CharTokenizer.train(["the cat sat on the mat."])
    cfg = small(vocab_size=tok.vocab_size)
    for kind, cls in (("lstm", LSTMLM), ("bilstm", BiLSTMLM)):
        torch.manual_seed(0)
        save_run(tmp_path / kind, cls(cfg), tok, model_type=kind, model_config=cfg)
        run = load_run(tmp_path / kind)
        out = export_contextual_vectors(run, "the cat")
        width = 2 * cfg.n_hidden if kind == "bilstm" else cfg.n_hidden
        assert out["layers"].shape == (cfg.n_layer, 7, width)
        assert "".join(out["tokens"]) == "the cat"
        # greedy decoding without a KV cache = argmax of a full re-run at every step
        c = generate(run.model, tok, "the", max_new_tokens=5, temperature=0)[0]
        ids = tok.encode("the")
        for new in c.tokens:
            assert run.model(torch.tensor([ids]))[0][0, -1].argmax().item() == new
            ids.append(new)
        beams = generate(run.model, tok, ["the", "a cat"], max_new_tokens=4, num_beams=2)
        assert len(beams) == 2
        # no KV cache, no length limit: the model slides over its last block_size (16) tokens
        assert len(generate(run.model, tok, "the cat sat", max_new_tokens=20, seed=0)[0].tokens) <= 20
        assert score_text(run.model, tok, "the mat").n_tokens == 8


def test_flops_per_token_counts_every_weight_six_times():
    """6·N, N without a separate input embedding: the trainer's MFU for LSTMs rests on it."""
    for cls in (LSTMLM, BiLSTMLM):
        model = cls(LSTMConfig(vocab_size=50, n_embd=16, n_hidden=24, n_layer=2, block_size=16))
        n = sum(p.numel() for p in model.parameters()) - model.wte.weight.numel()
        assert model.num_params() == n
        assert model.flops_per_token() == 6 * n
