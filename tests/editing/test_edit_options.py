"""What `lmlab edit` hands to the library: requests from options, --hparam settings and their routing, the
methods `edit eval` compares. No model is needed."""

import json

import pytest

from lmlab.editing import hparams_per_method, parse_hparams, prompt_template, requests_from_options
from lmlab.editing.runs import eval_methods
from lmlab.errors import LmlabError


def test_prompt_template_puts_braces_where_the_subject_is():
    assert prompt_template("The capital of Vorland is", "Vorland") == "The capital of {} is"
    assert prompt_template("Vorland, Vorland is", "Vorland") == "{}, Vorland is"
    assert prompt_template("The capital of {} is", "Lysaria") == "The capital of {} is"
    with pytest.raises(LmlabError, match="is not in the prompt"):
        prompt_template("The capital of Lysaria is", "Vorland")


def test_requests_from_options_one_fact_or_a_file(tmp_path):
    [r] = requests_from_options(prompt="The capital of Vorland is", subject="Vorland", target="X", target_true="Y")
    assert (r.prompt, r.subject, r.target_new, r.target_true) == ("The capital of {} is", "Vorland", "X", "Y")
    f = tmp_path / "edits.jsonl"
    f.write_text("".join(json.dumps({"prompt": "The capital of {} is", "subject": s, "target_new": "X"}) + "\n"
                         for s in ("A", "B", "C")))
    assert [r.subject for r in requests_from_options(f, limit=2)] == ["A", "B"]
    with pytest.raises(LmlabError, match="not both"):
        requests_from_options(f, subject="A")
    with pytest.raises(LmlabError, match="--target O"):
        requests_from_options(prompt="The capital of {} is", subject="A")


def test_parse_hparams_numbers_and_mistakes():
    assert parse_hparams(["v_steps=40", "lr=0.5", " kl = -2"]) == {"v_steps": 40, "lr": 0.5, "kl": -2}
    for bad, message in (("v_steps", "write KEY=VALUE"), ("=3", "write KEY=VALUE"), ("lr=fast", "must be a number")):
        with pytest.raises(LmlabError, match=message):
            parse_hparams([bad])


def test_hparams_go_to_the_methods_that_have_them():
    routed = hparams_per_method(["none", "rome", "ft"], {"v_steps": 40})
    assert routed == {"rome": {"v_steps": 40}, "ft": {}}
    with pytest.raises(LmlabError, match="no method in"):
        hparams_per_method(["none", "rome"], {"no_such_setting": 1})


def test_eval_methods_always_start_with_the_unedited_model():
    assert eval_methods(None) == ["none", "rome", "ft", "memit"]
    assert eval_methods("rome, ft") == ["none", "rome", "ft"]
    assert eval_methods(["ft", "none"]) == ["ft", "none"]
