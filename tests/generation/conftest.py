"""A tiny char-level GPT trained in ~2 s to continue one sentence, so decoding tests can check real behaviour."""

import pytest
import torch

from lmlab.checkpoint import save_run
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization import CharTokenizer

SENTENCE = "the cat sat on the mat."


def _train_tiny() -> tuple[GPT, CharTokenizer]:
    tok = CharTokenizer.train([SENTENCE + " é"], byte_fallback=True)
    ids = tok.encode((SENTENCE + "<eos>") * 12)
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32, vocab_size=tok.vocab_size + 6))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    data = torch.tensor(ids)
    for step in range(150):
        starts = torch.randint(0, len(ids) - 33, (16,))
        x = torch.stack([data[s:s + 32] for s in starts])
        y = torch.stack([data[s + 1:s + 33] for s in starts])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3, f"tiny model failed to learn (loss {loss.item():.2f})"
    return model.eval(), tok


@pytest.fixture(scope="session")
def trained():
    """(model, tokenizer): greedy decoding of 'the cat' gives ' sat on the mat.' then <eos>."""
    # Tiny matmuls gain nothing from threads, and on a busy shared CPU two spinning threads run ~5x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_tiny()
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def run_dir(trained, tmp_path_factory):
    """A run dir holding the trained tiny model (made with save_run, as training would)."""
    model, tok = trained
    path = tmp_path_factory.mktemp("runs") / "tiny"
    save_run(path, model, tok, model_config=model.config, training_config=None)
    return path
