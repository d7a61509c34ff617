"""Experiment: where does augmentation put a person's attributes? A linear probe per layer (Allen-Zhu & Li's
P-probing), for issue 27's write-up, docs/experiments/knowledge-augmentation.md ("Where the facts sit").

For each run, every person of its world is fed to the model after a sentence about something else (CONTEXT: the name
then reads as it does in most of the text, starting a sentence after another one), and the residual stream at the
name's last token is read after the embedding and after each block. A linear classifier (multinomial logistic
regression, L2 weight `--l2`, features standardised on the training fold) then predicts each of the person's static
attributes — birthplace, nationality, profession, instrument — from that vector, scored by k-fold cross-validation
over the people (folds are a seeded permutation; the same folds for every run of one world). High accuracy early
means the model has stored the attribute *at the name*, before any relation word is read: what extraction from a new
question form needs. As a positive control, the same probe is fitted at the last token of a statement prompt of the
relation ("Kavelor was born in"), where the model must hold the answer to predict it.

    .venv/bin/python scripts/experiments/p_probing.py --work /tmp/exp-ka --runs ka-A,ka-C,ka-E,ka-B,ka-D,ka-F,ka-G,ka-H

RUN is a run directory under --work whose world is WORK/RUN-world (the layout of knowledge_augmentation.py).
Writes docs/experiments/knowledge-augmentation-probing.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import torch

from lmlab.checkpoint import Run, load_run
from lmlab.inspection.hooks import read_activations
from lmlab.inspection.prompts import locate_subject
from lmlab.world.relations import RELATION_BY_NAME, to_prompt

REPO = Path(__file__).resolve().parents[2]
RELATIONS = ("born_in", "citizen_of", "works_as", "plays")
CONTEXT = "The fur of Kryplas is orange. {}"


def people_attributes(world: Path) -> tuple[list[str], dict[str, list[str]]]:
    """(people in facts.jsonl order, {relation: each person's object}) for the static person relations."""
    facts = [json.loads(line) for line in (world / "facts.jsonl").read_text().splitlines() if line.strip()]
    by_person: dict[str, dict[str, str]] = {}
    for f in facts:
        if f["subject_kind"] == "person" and not f["temporal"] and f["relation"] in RELATIONS:
            by_person.setdefault(f["subject"], {})[f["relation"]] = f["object"]
    people = [p for p, attrs in by_person.items() if len(attrs) == len(RELATIONS)]
    return people, {r: [by_person[p][r] for p in people] for r in RELATIONS}


def residual_states(run: Run, prompts: list[str], subjects: list[str], at_end: bool) -> torch.Tensor:
    """Residual stream of `run`'s model for each prompt ("{}" filled with its subject) at the subject's last
    token, or at the prompt's last token (at_end): (layers + 1, prompts, width), float32; index 0 is the embedding
    output, index l the output of block l-1."""
    model = run.model.eval()
    names = ["embed"] + [f"blocks.{l}.resid_post" for l in range(model.config.n_layer)]
    rows = []
    for prompt, subject in zip(prompts, subjects):
        span = locate_subject(run.tokenizer, prompt, subject)
        acts = read_activations(model, torch.tensor([span.ids]), names)
        pos = len(span.ids) - 1 if at_end else span.end - 1
        rows.append(torch.stack([acts[n][0, pos] for n in names]))
    return torch.stack(rows, dim=1).float()


def probe_accuracy(x: torch.Tensor, labels: list[str], folds: list[list[int]], l2: float) -> float:
    """Cross-validated accuracy (%) of a linear probe x (N, D) → labels (N): each fold is tested on a probe fitted
    to the others."""
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(v) for v in labels])
    correct = 0
    for test in folds:
        train = [i for i in range(len(labels)) if i not in set(test)]
        mu, sd = x[train].mean(0), x[train].std(0) + 1e-6
        xtr, xte = (x[train] - mu) / sd, (x[test] - mu) / sd
        w = torch.zeros(x.shape[1], len(classes), requires_grad=True)
        b = torch.zeros(len(classes), requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xtr @ w + b, y[train]) + l2 * (w * w).sum()
            loss.backward()
            return loss

        opt.step(closure)
        with torch.no_grad():
            correct += int(((xte @ w + b).argmax(1) == y[test]).sum())
    return 100 * correct / len(labels)


def chance(labels: list[str]) -> float:
    """Share (%) of the most frequent value: what a probe that ignores the state could reach."""
    return 100 * max(labels.count(v) for v in set(labels)) / len(labels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True, type=Path, help="knowledge_augmentation.py's working directory")
    ap.add_argument("--runs", default="ka-A,ka-C,ka-B,ka-D", help="run names under --work, comma-separated")
    ap.add_argument("--folds", type=int, default=6, help="cross-validation folds over the people (default 6)")
    ap.add_argument("--l2", type=float, default=0.01, help="L2 weight of the probe (default 0.01)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fold assignment")
    ap.add_argument("--out", type=Path, default=REPO / "docs/experiments/knowledge-augmentation-probing.json")
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    results: dict = {"l2": args.l2, "folds": args.folds, "runs": {}}
    for name in filter(None, args.runs.split(",")):
        people, attrs = people_attributes(args.work / f"{name}-world")
        order = list(range(len(people)))
        random.Random(args.seed).shuffle(order)
        folds = [order[k::args.folds] for k in range(args.folds)]
        run = load_run(args.work / name)
        states = residual_states(run, [CONTEXT] * len(people), people, at_end=False)
        # Positive control: the same probe at the last token of a statement prompt of the relation itself
        # ("Kavelor was born in"), where the model must hold the answer to predict it.
        control = {r: residual_states(run, [to_prompt(RELATION_BY_NAME[r].train[0])] * len(people),
                                      people, at_end=True) for r in RELATIONS}
        results["runs"][name] = {
            "people": len(people),
            "chance": {r: chance(attrs[r]) for r in RELATIONS},
            "probe": {r: [probe_accuracy(states[l], attrs[r], folds, args.l2) for l in range(states.shape[0])]
                      for r in RELATIONS},
            "control": {r: [probe_accuracy(control[r][l], attrs[r], folds, args.l2)
                            for l in range(control[r].shape[0])] for r in RELATIONS},
        }
    args.out.write_text(json.dumps(results, indent=1))
    layers = max(len(next(iter(r["probe"].values()))) for r in results["runs"].values())
    print("| run | attribute (chance) | probe at | " + " | ".join(["embedding"] + [f"after block {l}"
                                                                      for l in range(layers - 1)]) + " |")
    print("|---|---|---|" + "---|" * layers)
    for name, r in results["runs"].items():
        for rel in RELATIONS:
            for key, where in (("probe", "name"), ("control", "prompt end")):
                print(f"| {name} | {rel} ({r['chance'][rel]:.0f}) | {where} | "
                      + " | ".join(f"{v:.0f}" for v in r[key][rel]) + " |")

if __name__ == "__main__":
    main()
