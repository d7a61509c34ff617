"""lmlab.models.classifiers: labels read from the first token, padding never changes a prediction, the GPT
classifier reads its final state at the <extract> token, and a trained LM's weights carry over."""

import numpy as np
import pytest
import torch

from lmlab.data import RandomDocumentSampler
from lmlab.errors import LmlabError
from lmlab.models.bert import BERT, BERTConfig
from lmlab.models.classifiers import BERTClassifier, BERTClassifierConfig, BOWClassifier, BOWConfig, \
    GPTClassifier, GPTClassifierConfig, LSTMClassifier, LSTMClassifierConfig
from lmlab.models.gpt import GPT, GPTConfig

VOCAB = 40
FIRST_LABEL = 4  # <label0> = 4, <label1> = 5, <extract> = 6 (<cls> = 7, <sep> = 8, <mask> = 9) here
BERT_IDS = dict(cls_id=7, sep_id=8, mask_id=9)


def _models():
    torch.manual_seed(0)
    return [
        BOWClassifier(BOWConfig(vocab_size=VOCAB, block_size=16, first_label_id=FIRST_LABEL)),
        LSTMClassifier(LSTMClassifierConfig(vocab_size=VOCAB, block_size=16, n_embd=8, n_hidden=8, dropout=0.0,
                                            first_label_id=FIRST_LABEL)),
        GPTClassifier(GPTClassifierConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=VOCAB,
                                          first_label_id=FIRST_LABEL, extract_id=6)),
        BERTClassifier(BERTClassifierConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=VOCAB,
                                            dropout=0.0, first_label_id=FIRST_LABEL, **BERT_IDS)),
    ]


def test_label_survives_truncation_of_long_documents():
    # Documents of 30 tokens, cut to 8 by the trainer's document sampler: the label token comes first.
    docs = []
    for label in (0, 1, 1, 0):
        docs += [FIRST_LABEL + label] + list(range(10, 39)) + [3]  # 3 = <eos>
    sampler = RandomDocumentSampler(np.array(docs), eos_id=3, pad_id=0, max_len=8, batch_size=4, seed=0)
    x, _ = sampler.next_batch()
    assert x.shape[1] == 8 and set((x[:, 0] - FIRST_LABEL).tolist()) <= {0, 1}
    for model in _models():
        logits, loss = model(x, x)
        assert logits.shape == (4, 2) and torch.isfinite(loss)


@pytest.mark.parametrize("model", _models(), ids=lambda m: type(m).__name__)
def test_padding_does_not_change_the_logits_and_loss_is_label_cross_entropy(model):
    model.eval()
    x = torch.tensor([[FIRST_LABEL + 1, 11, 12, 13], [FIRST_LABEL, 14, 15, 0]])
    padded = torch.cat([x, torch.zeros(2, 5, dtype=torch.long)], dim=1)
    logits, loss = model(x)
    logits_padded, _ = model(padded)
    assert torch.allclose(logits, logits_padded, atol=1e-5)
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, torch.tensor([1, 0])), atol=1e-6)
    assert torch.allclose(model.classify(x[:, 1:]), logits, atol=1e-6)


def test_a_row_without_a_label_token_is_a_clear_error():
    model = _models()[0]
    with pytest.raises(LmlabError, match="does not start with a label token"):
        model(torch.tensor([[11, 12, 13]]))


def test_gpt_classifier_reads_the_final_state_at_the_extract_token():
    model = _models()[2].eval()
    text = torch.tensor([[11, 12, 13, 0, 0], [14, 15, 16, 17, 18]])
    idx, pos = model.extract_inputs(text)
    assert pos.tolist() == [3, 5]
    assert idx.tolist() == [[11, 12, 13, 6, 0, 0], [14, 15, 16, 17, 18, 6]]
    # The head applied to the GPT's final-norm state at <extract> (computed here without the classifier).
    seen = []
    handle = model.gpt.final_norm.register_forward_hook(lambda m, i, out: seen.append(out))
    model.gpt(idx)
    handle.remove()
    expected = model.head(seen[0][torch.arange(2), pos])
    assert torch.allclose(model.classify(text), expected, atol=1e-6)
    # Texts longer than block_size - 1 are cut so that <extract> still fits in the context.
    long = torch.arange(10, 40)[None]
    idx, pos = model.extract_inputs(long)
    assert idx.shape[1] == 16 and idx[0, 15] == 6


def test_gpt_classifier_starts_from_a_language_model():
    torch.manual_seed(1)
    lm = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=30))
    clf = GPTClassifier(GPTClassifierConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=33,
                                            first_label_id=31, extract_id=30))
    clf.init_from_lm(lm.state_dict(), n_old_tokens=30)
    wte = clf.gpt.wte.weight
    assert torch.equal(wte[:30], lm.wte.weight)  # every old token keeps its vector
    assert torch.allclose(wte[30:], lm.wte.weight.mean(0).expand(3, -1))  # new rows: the mean token
    assert torch.equal(clf.gpt.blocks[0].mlp.c_fc.weight, lm.blocks[0].mlp.c_fc.weight)
    assert clf.gpt.lm_head.weight is clf.gpt.wte.weight  # still tied


def test_gpt_auxiliary_lm_loss_is_added_with_its_coefficient():
    torch.manual_seed(0)
    cfg = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=VOCAB, first_label_id=FIRST_LABEL,
               extract_id=6)
    plain = GPTClassifier(GPTClassifierConfig(**cfg)).eval()
    aux = GPTClassifier(GPTClassifierConfig(**cfg, lm_coef=0.5)).eval()
    aux.load_state_dict(plain.state_dict())
    x = torch.tensor([[FIRST_LABEL + 1, 11, 12, 13, 14], [FIRST_LABEL, 15, 16, 0, 0]])
    _, clf_loss = plain(x)
    _, total = aux(x)
    # The LM part: next-token loss over text positions only (11→12, 12→13, 13→14, 15→16).
    logits, _ = plain.gpt(torch.tensor([[11, 12, 13, 14], [15, 16, 0, 0]]))
    targets = torch.tensor([[12, 13, 14, -100], [16, -100, -100, -100]])
    lm = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-100)
    assert torch.allclose(total, clf_loss + 0.5 * lm, atol=1e-5)


def test_bert_classifier_reads_the_cls_state_of_cls_text_sep():
    model = _models()[3].eval()
    text = torch.tensor([[11, 12, 0], [13, 14, 15]])
    idx, mask = model.cls_inputs(text)
    assert idx.tolist() == [[7, 11, 12, 8, 0], [7, 13, 14, 15, 8]]
    assert mask.tolist() == [[True] * 4 + [False], [True] * 5]
    expected = model.head(model.bert.encode(idx, mask)[:, 0])
    assert torch.allclose(model.classify(text), expected, atol=1e-6)


def test_bert_classifier_starts_from_a_masked_lm():
    torch.manual_seed(1)
    lm = BERT(BERTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=30, **BERT_IDS))
    clf = BERTClassifier(BERTClassifierConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, vocab_size=32,
                                              first_label_id=30, **BERT_IDS))
    clf.init_from_lm(lm.state_dict(), n_old_tokens=30)
    assert torch.equal(clf.bert.wte.weight[:30], lm.wte.weight)
    assert torch.allclose(clf.bert.wte.weight[30:], lm.wte.weight.mean(0).expand(2, -1))
    assert torch.equal(clf.bert.blocks[0].attn.c_attn.weight, lm.blocks[0].attn.c_attn.weight)
