"""Word-vector queries (neighbours, 3CosAdd analogies), the world-relation evaluation, and `lmlab embed`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lmlab.cli import main
from lmlab.data import prepare
from lmlab.errors import LmlabError
from lmlab.evaluation.embeddings import (analogy, evaluate_word_vectors, evaluate_world_embeddings,
                                         load_word_vectors, neighbors, world_entities)
from lmlab.models.embeddings import WordVectors
import lmlab.recipes as recipes
from lmlab.world import load_facts

REPO = Path(__file__).resolve().parents[2]


def _hand_vectors() -> WordVectors:
    tokens = ["<eos>", ".", "man", "woman", "king", "queen", "apple"]
    vecs = np.array([[9, 9, 9], [9, 9, 0],  # non-words: never returned
                     [1, 0, 0], [1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 0, -1]], dtype=float)
    mask = np.array([False, False, True, True, True, True, True])
    return WordVectors(vecs, tokens, mask)


def test_neighbors_are_cosine_ranked_words_without_the_query():
    v = _hand_vectors()
    got = v.neighbors("king", k=3)  # king = (1, 0, 1)
    assert [w for w, _ in got] == ["queen", "man", "woman"]
    np.testing.assert_allclose([s for _, s in got], [2 / np.sqrt(6), 1 / np.sqrt(2), 0.5], rtol=1e-6)


def test_analogy_is_3cosadd_excluding_inputs():
    v = _hand_vectors()
    assert v.analogy("man", "woman", "king", k=1)[0][0] == "queen"  # woman − man + king = (1, 1, 1)
    assert all(w not in ("man", "woman", "king") for w, _ in v.analogy("man", "woman", "king", k=4))


def test_unknown_word_error_suggests_close_words():
    with pytest.raises(LmlabError, match="close words: queen"):
        _hand_vectors().neighbors("quen")
    with pytest.raises(LmlabError, match="no vector"):
        _hand_vectors().neighbors(".")  # punctuation has no word vector


@pytest.fixture(scope="module")
def ppmi_run(world_dir, tmp_path_factory):
    """A PPMI run dir on the 100 KB world's fact text (word tokens); fitting takes well under a second."""
    base = tmp_path_factory.mktemp("emb")
    prepare([Path(world_dir) / "corpus" / "facts.txt"], "word", base / "data", split_blank_lines=True,
            dedup="none", progress=False)
    recipes.run(out=base / "ppmi", data_dir=base / "data", model_type="ppmi", overrides={"dim": 32}, progress=False)
    return base / "ppmi"


def test_world_evaluation_reports_every_score_in_range(ppmi_run, world_dir):
    r = evaluate_world_embeddings(ppmi_run, world_dir)
    assert r["entities_with_vectors"] == r["entities"] > 0
    assert -2 <= r["kind_clustering"] <= 2 and r["kind_clustering"] > 0  # same-kind pairs are closer
    assert r["same_kind_cos"] - r["cross_kind_cos"] == pytest.approx(r["kind_clustering"])
    for key in ("nn_kind_purity@1", "nn_kind_purity@5", "capital_analogy_acc", "language_analogy_acc"):
        assert 0 <= r[key] <= 1, key
    n_countries = len({f["subject"] for f in load_facts(world_dir) if f["relation"] == "capital_of"})
    assert r["capital_analogy_questions"] == n_countries * (n_countries - 1)
    assert r["capital_analogy_coverage"] == 1.0


def test_world_evaluation_of_perfect_vectors_scores_perfectly(world_dir):
    # One-hot kind + a shared country/capital direction: every analogy and every nearest entity is right.
    kinds = world_entities(world_dir)
    facts = load_facts(world_dir)
    capital = {f["subject"]: f["object"] for f in facts if f["relation"] == "capital_of"}
    language = {f["subject"]: f["object"] for f in facts if f["relation"] == "language_of"}
    names = sorted(kinds)
    kind_axis = {k: i for i, k in enumerate(sorted(set(kinds.values())))}
    countries = sorted(capital)
    dim = len(kind_axis) + len(countries)
    vecs = np.zeros((len(names), dim))
    for r, n in enumerate(names):
        vecs[r, kind_axis[kinds[n]]] = 3.0
    for j, c in enumerate(countries):
        for w in (c, capital[c], language[c]):
            vecs[names.index(w), len(kind_axis) + j] = 1.0
    v = WordVectors(vecs, names, np.ones(len(names), dtype=bool))
    r = evaluate_word_vectors(v, world_dir)
    assert r["capital_analogy_acc"] == 1.0 and r["language_analogy_acc"] == 1.0
    assert r["city_city_cos"] > r["city_person_cos"]


def test_python_api_matches_the_cli(ppmi_run, capsys):
    vectors = load_word_vectors(ppmi_run)
    word = next(w for w in ("Dremby", *vectors.tokens) if w in vectors and w[0].isupper())
    assert main(["embed", "neighbors", str(ppmi_run), word, "--k", "3", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = neighbors(ppmi_run, word, k=3)
    assert [w for w, _ in rows] == [w for w, _ in expected] and len(rows) == 3


def test_cli_analogy_prints_ranked_answers(ppmi_run, world_dir, capsys):
    caps = sorted((f["subject"], f["object"]) for f in load_facts(world_dir) if f["relation"] == "capital_of")
    (a, b), (c, _) = caps[0], caps[1]
    assert main(["embed", "analogy", str(ppmi_run), a, b, c, "--k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].split()[1] == analogy(ppmi_run, a, b, c, k=1)[0][0]


def test_cli_unknown_word_is_one_line_exit_2(ppmi_run):
    proc = subprocess.run([sys.executable, "-m", "lmlab", "embed", "neighbors", str(ppmi_run), "Zzqxv"],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    assert proc.stderr.startswith("lmlab: error: 'Zzqxv' has no vector") and proc.stderr.count("\n") == 1


def test_cli_refuses_a_model_without_word_vectors(random_run, capsys):
    assert main(["embed", "neighbors", str(random_run), "a"]) == 2
    assert "no word vectors" in capsys.readouterr().err
