"""Greedy and beam decoding of the encoder-decoder model, on a tiny model the real trainer taught to copy."""

import pytest

from lmlab.checkpoint import load_run
from lmlab.data.parallel import split_pairs
from lmlab.errors import LmlabError
from lmlab.generation.seq2seq import translate

from ..seq2seq_toy import toy_copy_run


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    run_dir, data_dir = toy_copy_run(tmp_path_factory)
    return load_run(run_dir), split_pairs(data_dir, "val")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_greedy_output_is_exact_on_held_out_pairs(toy):
    run, val = toy
    assert len(val) >= 50
    out = translate(run.model, run.tokenizer, [s for s, _ in val])
    assert [o.text for o in out] == [t for _, t in val]
    assert all(o.finish_reason == "eos" and o.tokens[-1] == run.tokenizer.eos_id for o in out)


def test_beam_search_scores_at_least_as_high_as_greedy(toy):
    run, val = toy
    sources = [s for s, _ in val[:12]] + ["h h h h", "a b"]
    greedy = translate(run.model, run.tokenizer, sources)
    beam = translate(run.model, run.tokenizer, sources, beam=4, length_penalty=0.0)  # rank by the raw sum
    for g, b in zip(greedy, beam):
        assert b.logprob >= g.logprob - 1e-4, (g, b)


def test_batched_greedy_equals_one_at_a_time(toy):
    run, val = toy
    sources = [s for s, _ in val[:6]]
    together = translate(run.model, run.tokenizer, sources, batch_size=6)
    alone = [translate(run.model, run.tokenizer, s)[0] for s in sources]
    assert [t.tokens for t in together] == [t.tokens for t in alone]
    for a, b in zip(together, alone):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)


def test_max_new_tokens_and_the_model_mode(toy):
    run, val = toy
    run.model.train()
    out = translate(run.model, run.tokenizer, val[0][0], max_new_tokens=2)
    assert len(out[0].tokens) == 2 and out[0].finish_reason == "length"
    assert run.model.training  # decoding switched dropout off only while it ran
    run.model.eval()


def test_bad_requests_are_clear_errors(toy, trained):
    run, _ = toy
    with pytest.raises(LmlabError, match="empty source"):
        translate(run.model, run.tokenizer, "")
    with pytest.raises(LmlabError, match="block_size"):
        translate(run.model, run.tokenizer, "a " * 40)
    with pytest.raises(LmlabError, match="max_new_tokens"):
        translate(run.model, run.tokenizer, "a b", max_new_tokens=run.model.config.block_size)
    gpt, tok = trained  # the decoder-only GPT of conftest.py
    with pytest.raises(LmlabError, match="encoder-decoder"):
        translate(gpt, tok, "the cat")
