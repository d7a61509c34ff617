"""AdamW parameter groups and the warmup + cosine learning-rate schedule."""

import math


from lmlab.models.gpt import GPT, GPTConfig
from lmlab.training.config import TrainConfig
from lmlab.training.optim import lr_at, make_optimizer


def test_weight_decay_only_on_matrices_and_every_parameter_once():
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=8, vocab_size=32))
    opt = make_optimizer(model, TrainConfig(weight_decay=0.1), "cpu")
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    ids = [id(p) for g in opt.param_groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))  # tied embedding counted once


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_min_lr():
    cfg = TrainConfig(lr=1e-3, min_lr=1e-4, warmup_iters=10, max_iters=110)
    lrs = [lr_at(s, cfg) for s in range(130)]
    assert 0 < lrs[0] < lrs[5] < lrs[9] < 1e-3  # rising during warmup, never 0 at step 0
    assert lrs[10] == 1e-3  # peak at the end of warmup
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then monotone non-increasing
    assert math.isclose(lrs[60], 1e-4 + 0.5 * (1e-3 - 1e-4))  # halfway through the cosine
    assert lrs[110] == lrs[129] == 1e-4  # floor after lr_decay_iters (= max_iters by default)
