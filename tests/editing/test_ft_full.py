"""Full fine-tuning (`ft` with full=1): every parameter may move, the edit lands, and restore undoes it exactly."""

import torch

from lmlab.editing import edit
from lmlab.models.gpt import GPT, GPTConfig
from lmlab.tokenization import train_tokenizer


def test_full_fine_tuning_changes_every_layer_and_restores_exactly():
    tok = train_tokenizer("char", ["The capital of Vorland is Kesta. Gutaiholm"], progress=False)
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=1, n_embd=16, block_size=64, vocab_size=tok.vocab_size))
    req = {"prompt": "The capital of {} is", "subject": "Vorland", "target_new": "Gutaiholm", "target_true": "Kesta"}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    result = edit(model, tok, req, "ft", layers=[0], full=1, norm_constraint=0.0, lr=1e-2, steps=10,
                  in_place=True)
    changed = {n.split(".")[0] + "." + n.split(".")[1] if n.startswith("blocks") else n for n in result.deltas}
    assert {"blocks.0", "blocks.1"} <= changed and any(not n.startswith("blocks") for n in result.deltas)
    entry = result.log[0]
    assert entry["after"]["p_new"] > 2 * entry["before"]["p_new"]
    result.restore()
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
