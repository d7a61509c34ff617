"""Finding other subjects of an edited relation in the statistics text (MEMIT's protect_relation)."""

import numpy as np
import torch

from lmlab.editing.relation import relation_subject_keys, subject_positions


def _tokens(tokenizer, text):
    return np.asarray(tokenizer.encode(text), dtype=np.int64)


def _last_tokens(tokenizer, tokens, positions):
    return [tokenizer.decode([int(tokens[p])]) for p in positions]


def test_subjects_before_the_relation_text_are_found_and_edited_ones_skipped(loaded):
    tok = loaded.tokenizer
    text = "Alva was born in Rome. Bram was born in Oslo. Alva lives here. Cato was born in Lima."
    tokens = _tokens(tok, text)
    found = subject_positions(tok, "{} was born in", tokens, exclude=["Bram"])
    # The last token of each subject that precedes " was born in", Bram's skipped.
    assert len(found) == 2
    assert "".join(_last_tokens(tok, tokens, found[:1])).strip() == tok.decode(tok.encode(" Alva")[-1:]).strip()
    assert all(tok.decode(tokens[p + 1: p + 4].tolist()) == " was born in" for p in found)


def test_subjects_after_the_relation_text_end_before_its_tail(loaded):
    tok = loaded.tokenizer
    text = "The capital of Xandorivel is Pell. The capital of Ru is Tam. The capital of Ru"
    tokens = _tokens(tok, text)
    found = subject_positions(tok, "The capital of {} is", tokens)
    # Multi-token subjects end right before " is"; the trailing mention with no " is" after it is not taken.
    assert len(found) == 2
    assert all(tok.decode(tokens[p + 1: p + 2].tolist()) == " is" for p in found)
    assert not subject_positions(tok, "{} is unheard of in this text", tokens).size
    # A one-token fixed text (" is") would match everywhere: nothing is taken.
    assert not subject_positions(tok, "{} is", tokens).size


def test_relation_keys_are_the_models_keys_at_those_subjects(loaded):
    tok, model = loaded.tokenizer, loaded.model
    text = " ".join(f"Sentence {i} goes here. P{i}x was born in Rome." for i in range(6))
    tokens = _tokens(tok, text)
    keys = relation_subject_keys(model, tok, ["{} was born in"], tokens, layer=1, per_template=4, seed=0)
    width = model.blocks[1].mlp.c_fc.out_features
    assert keys.shape == (4, width)
    # Each row is the layer-1 key at a subject's last token, read with the 16 tokens of text ending there.
    pos = subject_positions(tok, "{} was born in", tokens)
    pos = pos[pos >= 15]
    from lmlab.editing.prompts import Batch, key_activations
    ids = torch.from_numpy(np.stack([tokens[p - 15: p + 1] for p in pos]))
    every = key_activations(model, Batch(ids, torch.full((len(pos),), 15), torch.full_like(ids, -100),
                                         torch.full((len(pos),), 16)), 1)[:, 15]
    matched = [(every - k).abs().amax(1).min() < 1e-5 for k in keys]
    assert all(matched)
    assert relation_subject_keys(model, tok, ["{} sails to"], tokens, layer=1).shape == (0, width)


def test_rome_with_the_relation_protected_moves_other_subjects_less(loaded, world_requests, stats):
    from lmlab.editing import edit

    tok = loaded.tokenizer
    req = next(r for r in world_requests if r.kind == "counterfactual")
    plain = edit(loaded.model, tok, req, "rome", stats=stats, layers=[1], protect_relation=0)
    guarded = edit(loaded.model, tok, req, "rome", stats=stats, layers=[1])   # default: protect_relation=1
    others = relation_subject_keys(loaded.model, tok, [req.prompt], stats.tokens(), 1, exclude=[req.subject],
                                   seed=1)
    assert len(others) >= 3, "the fixture's text should state the relation about other subjects"

    def moved(result):  # mean change of the MLP output at the other subjects (norm, over their keys)
        return float((result.deltas["blocks.1.mlp.c_proj.weight"] @ others.T).norm(dim=0).mean())

    assert moved(guarded) < 0.7 * moved(plain), (moved(guarded), moved(plain))
    for result in (plain, guarded):  # and the edit itself still lands
        assert result.log[0]["after"]["p_new"] > result.log[0]["after"]["p_true"]
