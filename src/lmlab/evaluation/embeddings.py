"""Word vectors from a run dir, and how well they reflect the synthetic world's relations.

    from lmlab.evaluation.embeddings import neighbors, analogy, evaluate_world_embeddings
    neighbors("runs/w2v", "Dremby", k=10)                 # [(word, cosine), ...]
    analogy("runs/w2v", "Lysaria", "Dremby", "Veruna")    # Lysaria : Dremby :: Veruna : ?
    evaluate_world_embeddings("runs/w2v", "world")        # {"kind_clustering": ..., "capital_analogy_acc": ...}

The world-relation evaluation (definitions; all similarities are cosines):
  entities     the named entities of facts.jsonl with their kinds (country, city, person, company, language,
               animal) whose name is one word with a vector in the model.
  kind_clustering = mean cos over pairs of distinct entities of the same kind − mean cos over pairs of different
               kinds (0: kinds indistinguishable; higher: kinds form clusters). `same_kind_cos`, `cross_kind_cos`.
  city_city_cos, city_person_cos   mean cos between two cities, and between a city and a person ("are cities
               nearer to cities than to people?" ⇔ city_city_cos > city_person_cos).
  nn_kind_purity@1, @5   for each entity, the share of its 1 (5) nearest *entities* that have its kind.
  capital_analogy_acc   over ordered pairs of countries (a, b), a ≠ b: 3CosAdd on the whole vocabulary
               (country_a : capital_a :: country_b : ?, inputs excluded) returns capital_b first. Pairs with a
               word lacking a vector count as wrong (`capital_analogy_coverage` is the share of pairs answerable).
  language_analogy_acc  the same with language_of (country : language).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from lmlab.checkpoint import load_run
from lmlab.errors import LmlabError
from lmlab.models.embeddings import WordVectors
from lmlab.world import load_facts

ENTITY_KINDS = ("country", "city", "person", "company", "language", "animal")
ANALOGY_RELATIONS = {"capital": "capital_of", "language": "language_of"}


def load_word_vectors(run_dir: str | os.PathLike) -> WordVectors:
    """The word vectors of an embedding run dir (`lmlab train --model cooc|ppmi|word2vec`)."""
    run = load_run(run_dir)
    if not hasattr(run.model, "word_vectors"):
        raise LmlabError(f"{run_dir} holds a {run.model_type!r} model, which has no word vectors; "
                         "use a run trained with --model cooc, ppmi or word2vec")
    tok = run.tokenizer
    tokens = [tok.id_to_token(i) for i in range(tok.vocab_size)]
    return WordVectors(run.model.word_vectors().float().cpu().numpy(), tokens,
                       run.model.word_mask.cpu().numpy())


def neighbors(run_dir: str | os.PathLike, word: str, k: int = 10) -> list[tuple[str, float]]:
    """The k words nearest to `word` by cosine similarity, best first: [(word, cosine), ...]."""
    return load_word_vectors(run_dir).neighbors(word, k)


def analogy(run_dir: str | os.PathLike, a: str, b: str, c: str, k: int = 5) -> list[tuple[str, float]]:
    """3CosAdd answers to "a : b :: c : ?" (argmax cos(x, b − a + c), inputs excluded), best first."""
    return load_word_vectors(run_dir).analogy(a, b, c, k)


def evaluate_world_embeddings(run_dir: str | os.PathLike, world_dir: str | os.PathLike) -> dict[str, Any]:
    """The world-relation scores (module docstring) of the vectors in `run_dir` against the world in `world_dir`."""
    return evaluate_word_vectors(load_word_vectors(run_dir), world_dir)


def world_entities(world_dir: str | os.PathLike) -> dict[str, str]:
    """{name: kind} of the world's named entities (one-word names of the ENTITY_KINDS) from facts.jsonl."""
    kinds: dict[str, str] = {}
    for f in load_facts(world_dir):
        for name, kind in ((f["subject"], f["subject_kind"]), (f["object"], f["object_kind"])):
            if kind in ENTITY_KINDS and " " not in name:
                kinds[name] = kind
    return kinds


def evaluate_word_vectors(vectors: WordVectors, world_dir: str | os.PathLike) -> dict[str, Any]:
    """World-relation scores of any WordVectors (ours or, e.g., gensim's wrapped in WordVectors)."""
    kinds = world_entities(world_dir)
    names = sorted(n for n in kinds if n in vectors)
    out: dict[str, Any] = {"entities": len(kinds), "entities_with_vectors": len(names)}
    out.update(_kind_scores(vectors, names, [kinds[n] for n in names]))
    facts = load_facts(world_dir)
    for label, relation in ANALOGY_RELATIONS.items():
        pairs = sorted({(f["subject"], f["object"]) for f in facts if f["relation"] == relation})
        acc, coverage, n = _analogy_accuracy(vectors, pairs)
        out[f"{label}_analogy_acc"] = acc
        out[f"{label}_analogy_coverage"] = coverage
        out[f"{label}_analogy_questions"] = n
    return out


def _kind_scores(vectors: WordVectors, names: list[str], kinds: list[str]) -> dict[str, float | None]:
    if len(names) < 2:
        return {"kind_clustering": None, "same_kind_cos": None, "cross_kind_cos": None, "city_city_cos": None,
                "city_person_cos": None, "nn_kind_purity@1": None, "nn_kind_purity@5": None}
    E = np.stack([vectors.vector(n) for n in names])  # (n, d) unit vectors
    sims = E @ E.T
    kind = np.array(kinds)
    same = kind[:, None] == kind[None, :]
    off_diag = ~np.eye(len(names), dtype=bool)

    def mean(mask: np.ndarray) -> float | None:
        return float(sims[mask].mean()) if mask.any() else None

    same_cos, cross_cos = mean(same & off_diag), mean(~same)
    is_city, is_person = kind == "city", kind == "person"
    # Nearest entities of each entity (itself excluded): purity = share with the same kind.
    ranked = np.argsort(-np.where(off_diag, sims, -np.inf), axis=1, kind="stable")
    purity = {}
    for k in (1, 5):
        kk = min(k, len(names) - 1)
        purity[f"nn_kind_purity@{k}"] = float((kind[ranked[:, :kk]] == kind[:, None]).mean())
    return {"kind_clustering": None if same_cos is None or cross_cos is None else same_cos - cross_cos,
            "same_kind_cos": same_cos, "cross_kind_cos": cross_cos,
            "city_city_cos": mean(is_city[:, None] & is_city[None, :] & off_diag),
            "city_person_cos": mean(is_city[:, None] & is_person[None, :]), **purity}


def _analogy_accuracy(vectors: WordVectors, pairs: list[tuple[str, str]]) -> tuple[float | None, float | None, int]:
    """(accuracy, coverage, questions) of a : a' :: b : ? over ordered pairs of distinct (a, a'), (b, b')."""
    questions = [(a, a2, b, b2) for a, a2 in pairs for b, b2 in pairs if a != b and a2 != b2]
    if not questions:
        return None, None, 0
    correct = answerable = 0
    for a, a2, b, b2 in questions:
        if not all(w in vectors for w in (a, a2, b, b2)):
            continue
        answerable += 1
        best = vectors.analogy(a, a2, b, k=1)
        correct += bool(best) and best[0][0] == b2
    return correct / len(questions), answerable / len(questions), len(questions)


