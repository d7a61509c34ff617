"""The encoder-decoder model: cross-attention reads the source (and ignores its padding), the decoder is causal,
cached decoding equals a full pass, translation documents are split at <sep>, and T5 span corruption."""

import numpy as np
import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.models.gpt import KVCache
from lmlab.models.registry import build_model
from lmlab.models.seq2seq import Seq2Seq, Seq2SeqConfig, corrupt_spans, random_spans_noise_mask

V = 64
PAD, BOS, EOS, SEP = 0, 2, 3, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**kw) -> Seq2Seq:
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, n_enc_layer=2, n_dec_layer=2, n_head=2, n_embd=32, block_size=24, dropout=0.0)
    return Seq2Seq(Seq2SeqConfig(**{**cfg, **kw})).eval()


def test_cross_attention_reads_the_source_and_ignores_its_padding():
    m = tiny()
    tgt = torch.tensor([[BOS, 40, 41, 42]])
    a = m.decode(tgt, m.encode(torch.tensor([[10, 11, 12]])))
    b = m.decode(tgt, m.encode(torch.tensor([[10, 11, 13]])))
    padded = m.decode(tgt, m.encode(torch.tensor([[10, 11, 12, PAD, PAD, PAD]])))
    assert (a - b).abs().max() > 1e-3  # another source word → other predictions
    torch.testing.assert_close(a, padded, atol=1e-5, rtol=0)  # padding is invisible


def test_decoder_is_causal():
    m = tiny()
    enc = m.encode(torch.tensor([[10, 11, 12]]))
    a = m.decode(torch.tensor([[BOS, 40, 41, 42, 43]]), enc)
    b = m.decode(torch.tensor([[BOS, 40, 41, 50, 51]]), enc)
    torch.testing.assert_close(a[:, :3], b[:, :3], atol=1e-6, rtol=0)
    assert (a[:, 3:] - b[:, 3:]).abs().max() > 1e-3


def test_cached_step_by_step_decoding_equals_one_full_pass():
    m = tiny(pos_embedding="sinusoidal")
    enc = m.encode(torch.tensor([[10, 11, 12], [13, 14, PAD]]))
    tgt = torch.tensor([[BOS, 40, 41, 42], [BOS, 43, 44, 45]])
    full = m.decode(tgt, enc)
    cache = KVCache(m.config.n_dec_layer, 2, m.config.n_head, m.config.block_size, m.config.head_dim)
    steps = torch.cat([m.decode(tgt[:, i:i + 1], enc, kv_cache=cache) for i in range(tgt.shape[1])], dim=1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=0)


def test_translation_documents_are_split_at_the_first_sep():
    m = tiny()
    x = torch.tensor([[10, 11, 12, SEP, 20, 21, PAD, PAD],
                      [13, SEP, 22, 23, 24, SEP, 25, PAD]])  # a second <sep> belongs to the target
    src, tgt_in, labels = m.translation_batch(x)
    assert src.tolist() == [[10, 11, 12], [13, PAD, PAD]]
    assert tgt_in.tolist() == [[BOS, 20, 21, PAD, PAD, PAD], [BOS, 22, 23, 24, SEP, 25]]
    assert labels.tolist() == [[20, 21, EOS, -100, -100, -100], [22, 23, 24, SEP, 25, EOS]]
    logits, loss = m(x, x)
    assert logits.shape == (2, 6, V) and torch.isfinite(loss)


def test_a_document_cut_at_block_size_teaches_no_end():
    m = tiny(block_size=6)
    _, _, labels = m.translation_batch(torch.tensor([[10, 11, SEP, 20, 21, 22]]))  # full row: maybe truncated
    assert labels.tolist() == [[20, 21, 22, -100]]


def test_rows_without_sep_are_a_clear_error():
    m = tiny()
    with pytest.raises(LmlabError, match="no <sep>"):
        m(torch.tensor([[10, 11, 12, PAD]]), None)


def test_span_corruption_masks_15_percent_in_spans_of_mean_length_3():
    rng = np.random.default_rng(0)
    lengths, noise = [], 0
    for _ in range(50):
        mask = random_spans_noise_mask(200, rng, noise_density=0.15, mean_span_length=3.0, max_spans=32)
        noise += mask.sum()
        starts = np.flatnonzero(mask & ~np.concatenate([[False], mask[:-1]]))
        ends = np.flatnonzero(mask & ~np.concatenate([mask[1:], [False]]))
        lengths += (ends - starts + 1).tolist()
        assert not mask[0]  # T5: the sequence starts with kept tokens
    assert noise == 50 * 30  # round(200 × 0.15) per row, exactly
    assert abs(np.mean(lengths) - 3.0) < 0.1


def test_span_corruption_input_and_target_rebuild_the_text():
    sentinels = tuple(range(100, 132))
    tokens = np.arange(10, 50)
    src, tgt = corrupt_spans(tokens, np.random.default_rng(1), noise_density=0.15, mean_span_length=3.0,
                             sentinel_ids=sentinels)
    used = [t for t in src.tolist() if t >= 100]
    assert used == list(sentinels[:len(used)]) and used  # sentinels in order, one per span
    assert [t for t in tgt.tolist() if t >= 100] == used and tgt[0] == sentinels[0]
    # Put each span back in place of its sentinel: the original text.
    spans, cur = {}, None
    for t in tgt.tolist():
        if t >= 100:
            cur = t
            spans[cur] = []
        else:
            spans[cur].append(t)
    rebuilt = [u for t in src.tolist() for u in (spans[t] if t >= 100 else [t])]
    assert rebuilt == tokens.tolist()
    assert len(tgt) - len(used) == round(40 * 0.15)


def test_span_corruption_objective_trains_on_windows_and_seeds_eval():
    m = tiny(objective="span_corruption", block_size=48)
    assert m.batch_format == "windows"
    assert tiny(objective="span_corruption", span_batches="documents").batch_format == "documents"
    x = torch.randint(40, 60, (3, 40))
    src, tgt_in, labels = m.span_corruption_batch(x)
    assert tgt_in[:, 0].eq(BOS).all() and src.shape[1] < 40
    assert set(m.config.sentinel_ids) & set(src[0].tolist())
    torch.testing.assert_close(m(x, x)[1], m(x, x)[1])  # eval mode: the same corruption every time
    m.train()
    assert torch.isfinite(m(x, x)[1])


def test_config_errors_and_registry():
    with pytest.raises(LmlabError, match="objective"):
        Seq2SeqConfig(objective="denoise")
    with pytest.raises(LmlabError, match="divisible"):
        Seq2SeqConfig(n_embd=30, n_head=4)
    with pytest.raises(LmlabError, match="unknown seq2seq config"):
        Seq2SeqConfig.from_dict({"n_layer": 2})
    cfg = Seq2SeqConfig(vocab_size=V)
    assert Seq2SeqConfig.from_dict(cfg.to_dict()) == cfg
    model = build_model("seq2seq", cfg.to_dict())
    assert model.lm_head.weight is model.wte.weight  # tied embedding
    assert "<sep>" in Seq2Seq.special_tokens and "<sentinel31>" in Seq2Seq.special_tokens


def test_span_corruption_trains_through_the_trainer_on_plain_text(tmp_path):
    from lmlab.checkpoint import load_run, load_train_state
    from lmlab.generation.seq2seq import translate
    import lmlab.recipes as recipes

    for name in ("a.txt", "b.txt"):  # two documents, so the val split is not empty
        (tmp_path / name).write_text(f"the quick brown fox jumps over the lazy dog {name}. " * 20, encoding="utf-8")
    result = recipes.run(out=tmp_path / "run", text=[tmp_path / "a.txt", tmp_path / "b.txt"], tokenizer="char", model_type="seq2seq",
                         progress=False, overrides=dict(objective="span_corruption", n_enc_layer=1, n_dec_layer=1,
                                                        n_head=2, n_embd=16, block_size=32, batch_size=4,
                                                        max_iters=4, eval_iters=0, dtype="float32", device="cpu")).train
    assert result.step == 4 and np.isfinite(result.last_train_loss)
    assert load_train_state(tmp_path / "run")["sampler"]["kind"] == "random"  # random windows of the stream
    run = load_run(tmp_path / "run")
    out = translate(run.model, run.tokenizer, "the quick <sentinel0> fox", max_new_tokens=4)
    assert len(out[0].tokens) >= 1
