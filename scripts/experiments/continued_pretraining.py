"""Continued pretraining on new "company documents": what the model learns, what it forgets, and what replay buys.

Write-up: docs/experiments/continued-pretraining.md (its table is printed by this script).

    .venv/bin/python scripts/experiments/continued_pretraining.py --base runs/tiny --base-world runs/world \
        --work /tmp/cpt                                   # budgets 150,300 x replay 0,0.2 (~45 min, busy 2 cores)
    .venv/bin/python scripts/experiments/continued_pretraining.py ... --table-only      # table from WORK/results.json

Steps, each an `lmlab` command (printed, and recorded in the JSON):
1. `lmlab world --seed 1 --size 100KB` writes a small world the base model never saw; its corpus/facts.txt is the new
   documents, its tasks facts_train / facts_paraphrase are the questions. The script checks that none of its
   entity names (people, animals, cities, countries, companies, languages) occurs as a word in the base world's
   corpus, so every new fact is about an entity the base model never read about.
2. Before: the base run's closed-book exact match on the new facts (train and held-out phrasings) and on the base
   world's facts_train, and its loss on the old val split.
3. For each step budget x replay share: `lmlab train --init BASE --text facts.txt [--replay R] --max_iters N`, then
   the same evaluations, the val loss on the new documents' val split, and the wall seconds of the training.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LMLAB = [sys.executable, "-m", "lmlab"]
ENTITY_KINDS = {"country", "city", "company", "language", "person", "animal"}


def run(args: list[str], log: list[str], *, capture: bool = False) -> tuple[str, float]:
    """Run `lmlab ARGS` from the repo root; append the command as a user would type it to `log`.
    Returns (stdout if captured, wall seconds)."""
    shown = "lmlab " + " ".join(shlex.quote(str(a)) for a in args)
    log.append(shown)
    print(f"$ {shown}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    done = subprocess.run(LMLAB + [str(a) for a in args], check=True, cwd=REPO, text=True,
                          stdout=subprocess.PIPE if capture else None)
    return (done.stdout or ""), time.perf_counter() - t0


def entity_names(world: Path) -> set[str]:
    """Names of the world's entities (subjects and objects of its facts whose kind is an entity kind)."""
    names = set()
    for line in (world / "facts.jsonl").read_text().splitlines():
        fact = json.loads(line)
        if fact["subject_kind"] in ENTITY_KINDS:
            names.add(fact["subject"])
        if fact["object_kind"] in ENTITY_KINDS:
            names.add(fact["object"])
    return names


def check_unseen(new_world: Path, base_world: Path) -> int:
    """Fail if an entity name of `new_world` is a word of `base_world`'s corpus (case-insensitive).
    Returns the number of new entity names checked."""
    seen = set()
    for f in sorted((base_world / "corpus").glob("*.txt")):
        seen.update(w.lower() for w in re.findall(r"[A-Za-z]+", f.read_text()))
    names = entity_names(new_world)
    clash = sorted(n for n in names if n.lower() in seen)
    if clash:
        sys.exit(f"new world shares entity names with the base corpus: {clash[:10]}; pick another --seed")
    return len(names)


def exact_match(run_dir: Path, world: Path, tasks: str, out: Path, log: list[str]) -> dict[str, float]:
    """Greedy closed-book exact match per task name, 0-shot."""
    text, _ = run(["eval", "tasks", run_dir, "--tasks", tasks, "--world", world, "--out", out, "--json",
                   "--no-progress"], log, capture=True)
    return {r["task"]: r["metrics"]["exact_match"] for r in json.loads(text)}


def loss_on(run_dir: Path, data: Path, log: list[str]) -> float:
    """Mean cross-entropy (nats/token) of the run's model on the val split of shard dir `data`."""
    text, _ = run(["eval", "ppl", run_dir, "--data", data, "--json"], log, capture=True)
    return float(json.loads(text)["loss_nats"])


def evaluate(run_dir: Path, name: str, new_world: Path, base_world: Path, old_data: Path, evals: Path,
             log: list[str]) -> dict:
    """New-fact and old-fact exact match and old val loss of one run; result files go to `evals`/NAME-*.json."""
    new = exact_match(run_dir, new_world, "facts_train,facts_paraphrase", evals / f"{name}-new.json", log)
    old = exact_match(run_dir, base_world, "facts_train", evals / f"{name}-old.json", log)
    return {"new_facts_train": new["facts_train"], "new_facts_paraphrase": new["facts_paraphrase"],
            "old_facts_train": old["facts_train"], "old_val_loss": loss_on(run_dir, old_data, log)}


def by_answer_kind(res: dict) -> str:
    """Exact match (%) on the new facts split by whether the answer is a new name (an entity of the new world) or
    a word the base model knew (profession, instrument, species, colour), read from the per-item logs."""
    work, new_world = Path(res["new_world"]).parent, Path(res["new_world"])
    rows = ["| model | train phrasing: new names | train phrasing: known words | held-out: new names "
            "| held-out: known words |", "|---|---|---|---|---|"]
    # A relation's objects are all of one kind, so the relation says whether the answer is a new name.
    name_answer = {json.loads(x)["relation"]: json.loads(x)["object_kind"] in ENTITY_KINDS
                   for x in (new_world / "facts.jsonl").read_text().splitlines()}
    relations = {task: [json.loads(x)["relation"] for x in (new_world / "tasks" / f"{task}.jsonl").read_text()
                        .splitlines()] for task in ("facts_train", "facts_paraphrase")}
    for name in ["base"] + [f"cpt-{r['steps']}-r{r['replay']:g}" for r in res["runs"]]:
        items = [json.loads(x) for x in (work / "evals" / f"{name}-new.items.jsonl").read_text().splitlines()]
        cells = []
        for task, rels in relations.items():
            for want_name in (True, False):
                hits = [it["score"]["exact_match"] for it in items if it["task"] == task
                        and name_answer[rels[it["index"]]] == want_name]
                cells.append(f"{100 * sum(hits) / len(hits):.1f} ({len(hits)})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def old_answers(res: dict) -> str:
    """Old facts split like `by_answer_kind`, and how many old questions with a name answer the model now answers
    with an entity name of the new world (the new facts crowding out the old ones), from the per-item logs."""
    work, base_world = Path(res["new_world"]).parent, Path(res["base_world"])
    new_names = entity_names(Path(res["new_world"]))
    name_answer = {json.loads(x)["relation"]: json.loads(x)["object_kind"] in ENTITY_KINDS
                   for x in (base_world / "facts.jsonl").read_text().splitlines()}
    rels = [json.loads(x)["relation"] for x in (base_world / "tasks" / "facts_train.jsonl").read_text().splitlines()]
    rows = ["| model | old facts: names | old facts: known words | name questions answered with a new name |",
            "|---|---|---|---|"]
    for name in ["base"] + [f"cpt-{r['steps']}-r{r['replay']:g}" for r in res["runs"]]:
        items = [json.loads(x) for x in (work / "evals" / f"{name}-old.items.jsonl").read_text().splitlines()]
        names = [it for it in items if name_answer[rels[it["index"]]]]
        words = [it for it in items if not name_answer[rels[it["index"]]]]
        crowded = sum(any(w.strip(".,") in new_names for w in it["prediction"].split()) for it in names)
        pct = [100 * sum(it["score"]["exact_match"] for it in xs) / len(xs) for xs in (names, words)]
        rows.append(f"| {name} | {pct[0]:.1f} ({len(names)}) | {pct[1]:.1f} ({len(words)}) "
                    f"| {crowded} of {len(names)} |")
    return "\n".join(rows)


def table(res: dict) -> str:
    """The results as a markdown table (one row for the base model, one per budget x replay)."""
    pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
    head = ("| model | steps | replay | tokens seen | new facts (train phrasing) | new facts (held-out phrasing) "
            "| old facts | old val loss | new val loss | train s |\n|---|---|---|---|---|---|---|---|---|---|\n")
    b = res["base"]
    rows = [f"| base (`{Path(res['base_run']).name}`) | 0 | – | 0 | {pct(b['new_facts_train'])} | "
            f"{pct(b['new_facts_paraphrase'])} | {pct(b['old_facts_train'])} | {b['old_val_loss']:.3f} | "
            f"{b.get('new_val_loss', float('nan')):.3f} | – |"]
    for r in res["runs"]:
        rows.append(f"| continued | {r['steps']} | {r['replay']:g} | {r['tokens_seen'] / 1e6:.2f}M | "
                    f"{pct(r['new_facts_train'])} | {pct(r['new_facts_paraphrase'])} | {pct(r['old_facts_train'])} | "
                    f"{r['old_val_loss']:.3f} | {r['val_loss']:.3f} | {r['train_seconds']:.0f} |")
    return head + "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, default=REPO / "runs" / "tiny", help="the base run dir")
    ap.add_argument("--base-world", type=Path, default=REPO / "runs" / "world", help="the world it was trained on")
    ap.add_argument("--work", type=Path, default=Path("/tmp/cpt"))
    ap.add_argument("--seed", type=int, default=1, help="seed of the new world")
    ap.add_argument("--size", default="100KB", help="size of the new world")
    ap.add_argument("--budgets", default="150,300", help="step budgets, comma-separated")
    ap.add_argument("--replays", default="0,0.2", help="replay shares, comma-separated")
    ap.add_argument("--table-only", action="store_true", help="print the tables of WORK/results.json")
    a = ap.parse_args()
    work = a.work.resolve()
    out_json = work / "results.json"
    if a.table_only:
        res = json.loads(out_json.read_text())
        print(table(res) + "\n\n" + by_answer_kind(res) + "\n\n" + old_answers(res))
        return
    work.mkdir(parents=True, exist_ok=True)
    base, base_world = a.base.resolve(), a.base_world.resolve()
    base_cfg = json.loads((base / "config.json").read_text())["training"]
    old_data = Path(base_cfg["data_dir"])
    tokens_per_step = base_cfg["batch_size"] * base_cfg["grad_accum"] * json.loads(
        (base / "config.json").read_text())["model"]["block_size"]
    log: list[str] = []
    new_world = work / f"new-world-seed{a.seed}"
    if not (new_world / "world.json").is_file():
        run(["world", "--out", new_world, "--seed", a.seed, "--size", a.size], log)
    docs = new_world / "corpus" / "facts.txt"
    # An earlier sweep in WORK keeps its base evaluation and its rows: only missing (budget, replay) runs train.
    done = json.loads(out_json.read_text()) if out_json.is_file() else {}
    log[:0] = done.get("commands", [])
    res = {"base_run": str(base), "base_world": str(base_world), "new_world": str(new_world), "docs": str(docs),
           "docs_bytes": docs.stat().st_size, "new_entities": check_unseen(new_world, base_world),
           "new_facts": sum(1 for _ in (new_world / "tasks" / "facts_train.jsonl").open()),
           "tokens_per_step": tokens_per_step, "date": time.strftime("%Y-%m-%d", time.gmtime()),
           "commands": log, "runs": done.get("runs", [])}
    evals = work / "evals"  # never beside the base run: it may be someone else's directory
    res["base"] = done.get("base") or evaluate(base, "base", new_world, base_world, old_data, evals, log)
    for steps in (int(s) for s in a.budgets.split(",")):
        for replay in (float(r) for r in a.replays.split(",")):
            if any(r["steps"] == steps and r["replay"] == replay for r in res["runs"]):
                continue
            out = work / f"cpt-{steps}-r{replay:g}"
            args = ["train", "--init", base, "--text", docs, "--max_iters", steps, "--eval_interval", steps,
                    "--out", out, "--overwrite", "--no-progress"]
            _, secs = run(args + (["--replay", replay] if replay else []), log)
            last = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
            lineage = json.loads((out / "lineage.json").read_text())
            row = {"steps": steps, "replay": replay, "tokens_seen": steps * tokens_per_step, "train_seconds": secs,
                   "val_loss": [m for m in last if "val_loss" in m][-1]["val_loss"], "lineage": lineage,
                   **evaluate(out, out.name, new_world, base_world, old_data, evals, log)}
            if "new_val_loss" not in res["base"]:  # the new documents' val split exists once a run prepared it
                res["base"]["new_val_loss"] = loss_on(base, out / "data", log)
            res["runs"] = sorted(res["runs"] + [row], key=lambda r: (r["steps"], r["replay"]))
            out_json.write_text(json.dumps(res, indent=2))  # after every run, so a cut-short sweep keeps its rows
            print(table(res), flush=True)
    out_json.write_text(json.dumps(res, indent=2))
    print(table(res))


if __name__ == "__main__":
    main()
