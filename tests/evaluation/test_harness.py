"""The harness end to end on a tiny real model: every score equals what the model's own forward pass gives."""

import json

import pytest
import torch

from lmlab.errors import LmlabError
from lmlab.evaluation import Task, TaskConfig, evaluate_task

from ..hf_gpt2_files import save_random_hf_gpt2

MC_DOCS = [{"x": "the cat", "choices": ["sat", "ran away", "is"], "label": 0},
           {"x": "a dog", "choices": ["barks", "sat", "runs fast"], "label": 2},
           {"x": "one plus one", "choices": ["is two", "is 3"], "label": 0},
           {"x": "blue sky", "choices": ["at noon", "red"], "label": 1}]


def forward_logprobs(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids]))[0][0].log_softmax(-1)


def direct_score(model, tok, context, continuation):
    """(log P(continuation | context), is_greedy) from one forward pass (an empty context starts at <eos>; a
    context too long for the model loses its start)."""
    ctx = tok.encode(context) or [tok.eos_id]
    cont = tok.encode(continuation)
    lp = forward_logprobs(model, (ctx + cont)[:-1][-model.config.block_size:])
    rows = lp[-len(cont):]
    total = sum(rows[j, t].item() for j, t in enumerate(cont))
    greedy = all(int(rows[j].argmax()) == t for j, t in enumerate(cont))
    return total, greedy


def direct_greedy(model, tok, prompt, max_new, stop):
    """Greedy decoding written out: argmax of the last position, until <eos>, a stop string or max_new tokens."""
    ids, new = tok.encode(prompt), []
    for _ in range(max_new):
        with torch.no_grad():
            t = int(model(torch.tensor([ids + new]))[0][0, -1].argmax())
        if t == tok.eos_id:
            break
        new.append(t)
        text = tok.decode(new)
        if stop in text:
            return text[:text.index(stop)]
    return tok.decode(new)


def mc_task(**kw):
    return Task(TaskConfig(task="mc", output_type="multiple_choice", doc_to_text="{x}", doc_to_choice="choices",
                           doc_to_target="{label}", **kw), MC_DOCS)


@pytest.mark.parametrize("shots", [0, 1])
def test_multiple_choice_matches_the_model(random_model, shots):
    model, tok = random_model
    task = mc_task()
    result, items = evaluate_task(model, tok, task, shots=shots, batch_size=3)
    accs, norms = [], []
    for doc, item in zip(MC_DOCS, items):
        assert item["prompt"] == task.context(item["index"], shots)
        direct = [direct_score(model, tok, item["prompt"], " " + c)[0] for c in doc["choices"]]
        assert item["loglikelihoods"] == pytest.approx(direct, abs=1e-4)
        best = max(range(len(direct)), key=lambda j: direct[j])
        best_norm = max(range(len(direct)), key=lambda j: direct[j] / len(doc["choices"][j]))
        accs.append(int(best == doc["label"]))
        norms.append(int(best_norm == doc["label"]))
        assert item["prediction"] == doc["choices"][best] and item["target"] == doc["choices"][doc["label"]]
    assert result["metrics"]["acc"] == pytest.approx(sum(accs) / 4)
    assert result["metrics"]["acc_norm"] == pytest.approx(sum(norms) / 4)
    assert result["n"] == 4 and result["requests"] == 10 and result["stderr"]["acc"] is not None


def test_batch_size_and_length_sorting_do_not_change_scores(random_model):
    model, tok = random_model
    _, one = evaluate_task(model, tok, mc_task(), shots=1, batch_size=1)
    _, many = evaluate_task(model, tok, mc_task(), shots=1, batch_size=16)
    for a, b in zip(one, many):
        assert a["loglikelihoods"] == pytest.approx(b["loglikelihoods"], abs=1e-4)


def test_loglikelihood_reports_is_greedy_and_perplexity(random_model):
    model, tok = random_model
    # The first target is the model's own greedy continuation, so is_greedy must be 1 for it.
    docs = [{"prompt": "abc", "target": direct_greedy(model, tok, "abc", 3, "\x00")},
            {"prompt": "the", "target": " end."}]
    task = Task(TaskConfig(task="ll", output_type="loglikelihood", target_delimiter=""), docs)
    result, items = evaluate_task(model, tok, task)
    direct = [direct_score(model, tok, d["prompt"], d["target"]) for d in docs]
    assert [it["loglikelihood"] for it in items] == pytest.approx([d[0] for d in direct], abs=1e-4)
    assert [it["prediction"] for it in items] == [d[1] for d in direct]
    assert items[0]["prediction"] is True
    assert result["metrics"]["acc"] == pytest.approx(sum(d[1] for d in direct) / 2)
    mean_ll = sum(d[0] for d in direct) / 2
    assert result["metrics"]["perplexity"] == pytest.approx(torch.tensor(-mean_ll).exp().item(), rel=1e-4)


def test_generate_until_matches_greedy_decoding(random_model):
    model, tok = random_model
    prompts = ["Q: 1 plus 1 A:", "the cat", "hello", "abc"]
    outputs = [direct_greedy(model, tok, p, 6, "\n") for p in prompts]
    # Two targets are what the model writes (exact match 1), two are not.
    docs = [{"prompt": p, "target": (o.strip() if i % 2 == 0 else "zzz")} for i, (p, o) in enumerate(zip(prompts,
                                                                                                         outputs))]
    task = Task(TaskConfig(task="gen", output_type="generate_until", until=["\n"], max_gen_toks=6), docs)
    result, items = evaluate_task(model, tok, task, batch_size=3)
    assert [it["prediction"] for it in items] == outputs
    assert [it["score"]["exact_match"] for it in items] == [1, 0, 1, 0]
    assert result["metrics"]["exact_match"] == 0.5


def lm_eval_rolling_windows(tokens, prefix, max_len):
    """lm-evaluation-harness's get_rolling_token_windows with context_len=1: (inputs, targets) windows that
    predict every token exactly once, each from up to max_len tokens of history."""
    first = min(max_len, len(tokens))
    yield [prefix] + tokens[:first - 1], tokens[:first]
    done = first
    while done < len(tokens):
        n = min(len(tokens) - done, max_len)
        end = done + n
        yield tokens[max(0, end - max_len - 1):end - 1], tokens[end - n:end]
        done += n


def test_rolling_loglikelihood_predicts_every_token_once(random_model):
    model, tok = random_model  # block_size 32
    docs = [{"text": "short text."}, {"text": "a longer document that needs three windows of context. " * 2}]
    task = Task(TaskConfig(task="ppl", output_type="loglikelihood_rolling", doc_to_target="{text}"), docs)
    result, items = evaluate_task(model, tok, task)
    for doc, item in zip(docs, items):
        ids = tok.encode(doc["text"])
        expected = 0.0
        for inputs, targets in lm_eval_rolling_windows(ids, tok.eos_id, 32):
            lp = forward_logprobs(model, inputs)
            rows = lp[len(inputs) - len(targets):]
            expected += sum(rows[j, t].item() for j, t in enumerate(targets))
        assert item["loglikelihood"] == pytest.approx(expected, abs=1e-3)
        assert item["n_tokens"] == len(ids)
    total = sum(it["loglikelihood"] for it in items)
    nbytes = sum(len(d["text"].encode()) for d in docs)
    assert result["metrics"]["bits_per_byte"] == pytest.approx(-total / nbytes / torch.log(torch.tensor(2.)).item())
    with pytest.raises(LmlabError, match="0 shots"):
        evaluate_task(model, tok, task, shots=1)


def test_group_by_reports_each_value(random_model):
    model, tok = random_model
    docs = [dict(d, kind="animal" if i < 2 else "other") for i, d in enumerate(MC_DOCS)]
    task = Task(TaskConfig(task="g", output_type="multiple_choice", doc_to_text="{x}", doc_to_choice="choices",
                           doc_to_target="{label}", group_by="kind"), docs)
    result, items = evaluate_task(model, tok, task)
    assert set(result["groups"]) == {"animal", "other"} and result["groups"]["animal"]["n"] == 2
    assert result["groups"]["animal"]["metrics"]["acc"] == pytest.approx(
        sum(it["score"]["acc"] for it in items[:2]) / 2)


def test_limit_takes_the_first_items(random_model):
    model, tok = random_model
    result, items = evaluate_task(model, tok, mc_task(), limit=2)
    assert result["n"] == 2 and [it["index"] for it in items] == [0, 1]
    json.dumps(items)  # the item log is JSON-serialisable


transformers = pytest.importorskip("transformers")


def test_imported_hf_gpt2_scores_equal_transformers(tmp_path):
    from lmlab.checkpoint import load_run
    from lmlab.hub import import_hf_gpt2

    sentences = ["the cat sat on the mat.", "a dog barks at the moon.", "one plus one is two."] * 4
    hf = save_random_hf_gpt2(tmp_path, sentences, n_layer=1, n_embd=32)
    run = load_run(import_hf_gpt2(tmp_path, tmp_path / "run"))
    task = mc_task()
    _, items = evaluate_task(run.model, run.tokenizer, task, shots=1)
    for doc, item in zip(MC_DOCS, items):
        ctx = run.tokenizer.encode(item["prompt"])
        for choice, ll in zip(doc["choices"], item["loglikelihoods"]):
            cont = run.tokenizer.encode(" " + choice)
            with torch.no_grad():
                lp = hf(torch.tensor([ctx + cont])).logits[0].log_softmax(-1)
            theirs = sum(lp[len(ctx) - 1 + j, t].item() for j, t in enumerate(cont))
            assert ll == pytest.approx(theirs, abs=1e-4)
