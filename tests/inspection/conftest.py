"""Fixtures: a random GPT with a BPE tokenizer (shapes, hooks, exactness checks) and a tiny GPT trained in a few
seconds on a word-level 'capital of' corpus, so causal tracing and the lens can be checked on facts it knows."""

import random

import pytest
import torch

from lmlab.checkpoint import save_run
from lmlab.data import prepare
from lmlab.models import GPT, GPTConfig
from lmlab.tokenization import BPETokenizer, WordTokenizer

TEXTS = ["The capital of France is Paris. The capital of Spain is Madrid. Alice plays the violin.",
         "Bob plays the lute; the capital of Lysaria is Dremby, and Fefryrovia borders Lysaria."] * 10

# Subjects of one and two words (two tokens under the word tokenizer), objects one word each.
FACTS = [("Vorania", "Keltby"), ("New Osperia", "Marrow"), ("Brumland", "Sipton"), ("Old Tallovia", "Yelden"),
         ("Quenmark", "Ruskin"), ("Zibreth", "Obbley")]
PROMPT = "the capital of {} is"


def fact_records():
    return [{"prompt": PROMPT, "subject": s, "object": o} for s, o in FACTS]


def fact_corpus(n: int = 400, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "\n".join(PROMPT.format(s) + f" {o} ." for s, o in (rng.choice(FACTS) for _ in range(n)))


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny matmuls gain nothing from threads, and on a busy shared CPU spinning threads run several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def bpe_tok():
    return BPETokenizer.train(TEXTS, vocab_size=300)


@pytest.fixture(scope="session")
def random_model(bpe_tok):
    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=3, n_head=2, n_embd=32, block_size=64, vocab_size=bpe_tok.vocab_size)
    return GPT(cfg).eval()


@pytest.fixture(scope="session")
def random_run(random_model, bpe_tok, tmp_path_factory):
    """Run dir of the random model, with BPE shards of TEXTS recorded as its training data dir."""
    root = tmp_path_factory.mktemp("random")
    (root / "text.txt").write_text("\n\n".join(TEXTS))
    prepare([root / "text.txt"], bpe_tok, root / "data", split_blank_lines=True, dedup="none", val_fraction=0.2,
            workers=1, progress=False)
    return save_run(root / "run", random_model, bpe_tok, model_config=random_model.config,
                    training_config={"data_dir": str(root / "data")})


def _train_facts():
    text = fact_corpus()
    tok = WordTokenizer.train([text])
    data = torch.tensor(tok.encode(text))
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16, vocab_size=tok.vocab_size))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(120):
        starts = torch.randint(0, len(data) - 17, (32,))
        x = torch.stack([data[s:s + 16] for s in starts])
        y = torch.stack([data[s + 1:s + 17] for s in starts])
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), tok, loss.item()


@pytest.fixture(scope="session")
def facts_model():
    """(model, tokenizer) of a 2-layer GPT that completes 'the capital of {subject} is' with its object."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # session fixtures run before the per-test one_thread fixture
    try:
        model, tok, loss = _train_facts()
    finally:
        torch.set_num_threads(threads)
    assert loss < 0.9, f"the facts model did not learn (loss {loss:.2f})"
    return model, tok


@pytest.fixture(scope="session")
def facts_run(facts_model, tmp_path_factory):
    model, tok = facts_model
    return save_run(tmp_path_factory.mktemp("facts") / "run", model, tok, model_config=model.config)
