"""Reading edit requests in their three formats, and the metric arithmetic."""

import json
from pathlib import Path

import pytest

from lmlab.editing import case_scores, harmonic_mean, load_requests, n_gram_entropy, request_from_record, summarize
from lmlab.errors import LmlabError

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def test_counterfact_easyedit_record_gets_a_template():
    r = request_from_record({"case_id": 0, "prompt": "The mother tongue of Danielle Darrieux is",
                             "target_new": "English", "subject": "Danielle Darrieux", "ground_truth": "French",
                             "rephrase_prompt": "Where Danielle Darrieux is from, people speak the language of",
                             "locality_prompt": "Michel Rocard is a native speaker of",
                             "locality_ground_truth": "French"})
    assert r.prompt == "The mother tongue of {} is" and r.filled_prompt.endswith("Darrieux is")
    assert (r.target_new, r.target_true) == ("English", "French")
    assert r.paraphrase_prompts == ["Where Danielle Darrieux is from, people speak the language of"]
    assert r.neighborhood_prompts == ["Michel Rocard is a native speaker of"] and r.neighborhood_targets == ["French"]


def test_world_case_and_simple_record():
    case = {"case_id": 3, "kind": "outdated_to_current", "requested_rewrite": {
        "prompt": "The leader of {} is", "subject": "Vorland", "target_new": {"str": "Ana"},
        "target_true": {"str": "Bo"}}, "paraphrase_prompts": ["Vorland is governed by"],
        "neighborhood_prompts": ["The leader of Lysaria is"], "neighborhood_targets": ["Cy"]}
    r = request_from_record(case)
    assert (r.prompt, r.subject, r.target_new, r.target_true, r.kind) == (
        "The leader of {} is", "Vorland", "Ana", "Bo", "outdated_to_current")
    s = request_from_record({"prompt": "The capital of Vorland is", "subject": "Vorland", "target": "X"})
    assert s.prompt == "The capital of {} is" and s.target_true is None


@pytest.mark.parametrize("record, message", [
    ({"prompt": "The capital of {} is", "subject": "V", "target_new": ""}, "target is empty"),
    ({"prompt": "The capital of Lysaria is", "subject": "Vorland", "target_new": "X"}, "is not in the prompt"),
    ({"prompt": "The capital of {} is", "subject": "", "target_new": "X"}, "subject is empty"),
    ({"prompt": "{} and {}", "subject": "V", "target_new": "X"}, "exactly once"),
])
def test_bad_records_are_explained(record, message):
    with pytest.raises(LmlabError, match=message):
        request_from_record(record)


def test_json_list_errors_name_the_item(tmp_path):
    f = tmp_path / "cf.json"
    f.write_text(json.dumps([{"prompt": "A {} b", "subject": "x", "target_new": "y"},
                             {"prompt": "A {} b", "subject": "x"}]))
    with pytest.raises(LmlabError, match="item 1"):
        load_requests(f)
    assert len(load_requests(f, limit=1)) == 1


def test_shared_counterfact_file_converts():
    path = SHARED / "counterfact_easyedit_edit_10k.json"
    if not path.is_file():
        pytest.skip(f"{path} not present (shared data dir)")
    reqs = load_requests(path, limit=20)
    assert len(reqs) == 20 and all(r.prompt.count("{}") == 1 and r.target_true for r in reqs)


def test_scores_and_their_harmonic_mean():
    probs = {"edit": [0.6, 0.2], "paraphrase": [[0.5, 0.4], [0.1, 0.3]], "neighborhood": [[0.7, 0.1], [0.2, 0.3]]}
    s = case_scores(probs)
    assert s["efficacy_score"] == 1.0 and s["efficacy_magnitude"] == pytest.approx(0.4)
    assert s["paraphrase_score"] == 0.5 and s["neighborhood_score"] == 0.5
    assert s["neighborhood_magnitude"] == pytest.approx(0.25)
    summary = summarize([s])
    assert summary["efficacy_score"] == 100.0 and summary["S"] == pytest.approx(3 / (1 / 100 + 2 / 50))
    assert harmonic_mean([50.0, 0.0]) == 0.0


def test_repetitive_text_has_lower_generation_entropy():
    varied = "the cat sat on a mat while two dogs ran across green fields near an old stone bridge"
    repetitive = "the cat the cat the cat the cat the cat the cat the cat the cat"
    assert n_gram_entropy(repetitive) < n_gram_entropy(varied)
    assert n_gram_entropy("") == 0.0


def test_batches_never_hold_one_subject_twice_and_keep_order():
    from lmlab.editing.evaluate import conflict_free_groups

    reqs = [request_from_record({"prompt": "{} lives in", "subject": s, "target_new": "X"})
            for s in ["Ann", "Bob", "Ann", "Cid", "Ann", "Bob"]]
    groups = conflict_free_groups(reqs, 3)
    assert [[r.subject for r in g] for g in groups] == [["Ann", "Bob", "Cid"], ["Ann", "Bob"], ["Ann"]]
    assert sorted(id(r) for g in groups for r in g) == sorted(id(r) for r in reqs)
    assert [len(g) for g in conflict_free_groups(reqs[:2], 1)] == [1, 1]


def test_neighbours_edited_in_the_same_batch_are_left_out_of_the_score():
    from lmlab.editing.evaluate import without_edited_neighbours

    req = request_from_record({"prompt": "The capital of {} is", "subject": "Veruna", "target_new": "Tarsk",
                               "target_true": "Olm", "neighborhood_prompts": [
                                   "The capital of Kryplia is", "The capital of Lysaria is", "The capital of Kry is"],
                               "neighborhood_targets": ["A", "B", "C"]})
    probs = {"edit": [0.9, 0.1], "paraphrase": [], "neighborhood": [[0.8, 0.1], [0.2, 0.7], [0.6, 0.3]]}
    kept, n = without_edited_neighbours(probs, req, ["Veruna", "Lysaria", "Kry"])
    assert n == 2 and kept["neighborhood"] == [[0.8, 0.1]]       # "Kry" is not "Kryplia": whole names only
    assert case_scores(kept)["neighborhood_score"] == 1.0
    assert without_edited_neighbours(probs, req, ["Veruna"]) == (probs, 0)
