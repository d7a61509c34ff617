"""`lmlab inspect memories|lens|attention` and `lmlab locate`: text reports, --json, files written, one-line errors."""

import json
import subprocess
import sys

import pytest

from lmlab.cli import main

from .conftest import FACTS, fact_records


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_lens_text_and_json(capsys, facts_run):
    code, out, _ = run_cli(capsys, "inspect", "lens", facts_run, "--prompt", "the capital of Vorania is",
                           "--top-k", "2")
    assert code == 0
    lines = out.splitlines()
    assert "logit lens" in lines[0] and any(l.strip().startswith("layer 1") and "'Keltby'" in l for l in lines)
    code, out, _ = run_cli(capsys, "inspect", "lens", facts_run, "--prompt", "the capital of", "--json",
                           "--all-positions")
    r = json.loads(out)
    assert r["positions"] == [0, 1, 2] and len(r["stages"]) == 3


def test_memories_with_recorded_corpus(capsys, random_run):
    code, out, _ = run_cli(capsys, "inspect", "memories", random_run, "--prompt", "The capital of Spain is",
                           "--top-k", "2", "--layer", "2", "--windows", "16", "--window", "16", "--triggers", "1")
    assert code == 0
    assert "layer 2:" in out and out.count("  key ") == 2 and "trigger m=" in out
    assert "agreement" in out and "shuffled" in out
    code, out, _ = run_cli(capsys, "inspect", "memories", random_run, "--prompt", "The capital", "--json",
                           "--windows", "8", "--window", "8")
    r = json.loads(out)
    assert len(r["layers"]) == 3 and len(r["agreement"]) == 3 and r["corpus"]["windows"] == 8
    assert all("triggers" in k for e in r["layers"] for k in e["keys"])


def test_memories_without_corpus(capsys, facts_run):
    code, out, _ = run_cli(capsys, "inspect", "memories", facts_run, "--prompt", "the capital of Vorania is")
    assert code == 0 and "pass --data DIR" in out and "promotes" in out


def test_attention_writes_png(capsys, facts_run, tmp_path):
    fig = tmp_path / "sub" / "att.png"
    code, out, _ = run_cli(capsys, "inspect", "attention", facts_run, "--prompt", "the capital of Vorania is",
                           "--out", fig, "--layer", "1")
    assert code == 0 and fig.read_bytes()[:4] == b"\x89PNG"
    assert "layer 1:" in out and "layer 0:" not in out


def test_locate_one_fact(capsys, facts_run, tmp_path):
    code, out, _ = run_cli(capsys, "locate", facts_run, "--prompt", "the capital of New Osperia is",
                           "--subject", "New Osperia", "--target", "Marrow", "--out", tmp_path, "--samples", "4")
    assert code == 0
    assert "P_clean" in out and "largest indirect effect" in out and "'Marrow'" in out
    r = json.loads((tmp_path / "causal_trace.json").read_text())
    assert r["samples"] == 4 and r["subject_range"] == [3, 5] and r["target_token"] == "Marrow"
    assert (tmp_path / "causal_trace.png").is_file()


def test_locate_facts_file(capsys, facts_run, tmp_path):
    facts = tmp_path / "facts.jsonl"
    facts.write_text("".join(json.dumps(f) + "\n" for f in fact_records()))
    code, out, _ = run_cli(capsys, "locate", facts_run, "--facts", facts, "--limit", "4", "--out", tmp_path / "o",
                           "--samples", "3", "--json")
    r = json.loads(out)
    assert code == 0 and r["n_facts"] == 4 and len(r["facts"]) == 4 and r["samples"] == 3
    for name in ("average.json", "average.png", "traces.jsonl"):
        assert (tmp_path / "o" / name).is_file()
    assert len((tmp_path / "o" / "traces.jsonl").read_text().splitlines()) == 4
    code, out, _ = run_cli(capsys, "locate", facts_run, "--facts", facts, "--out", tmp_path / "o2", "--samples", "2")
    assert code == 0 and "first subsequent token" in out and "peak:" in out and f"of {len(FACTS)}" in out


@pytest.mark.parametrize("argv,message", [
    (["locate", "{run}", "--prompt", "the capital of Vorania is", "--subject", "Paris", "--out", "{tmp}"],
     "not in the prompt"),
    (["inspect", "memories", "{run}", "--prompt", "the capital", "--layer", "7"], "out of range"),
    (["inspect", "attention", "{run}", "--prompt", "the capital", "--layer", "-3", "--out", "{tmp}/a.png"],
     "out of range"),
    (["inspect", "lens", "{tmp}", "--prompt", "x"], "not a run dir"),
    (["locate", "{run}", "--out", "{tmp}"], "either --prompt"),
    (["locate", "{run}", "--facts", "{tmp}/bad.jsonl", "--out", "{tmp}"], "bad.jsonl:2:"),
])
def test_user_errors_exit_2_with_one_line(capsys, facts_run, tmp_path, argv, message):
    (tmp_path / "bad.jsonl").write_text('{"prompt": "a {}", "subject": "b", "object": "c"}\n{"prompt": 1}\n')
    code, out, err = run_cli(capsys, *[a.format(run=facts_run, tmp=tmp_path) for a in argv])
    assert code == 2 and message in err
    assert err.startswith("lmlab: error: ") and err.count("\n") == 1


def test_subprocess_entry_point(facts_run):
    p = subprocess.run([sys.executable, "-m", "lmlab", "inspect", "lens", str(facts_run), "--prompt",
                        "the capital of Zibreth is", "--top-k", "1", "--json"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["stages"][-1]["positions"][0]["top"][0]["token"] == "Obbley"


def test_memories_corpus_errors(capsys, random_run, tmp_path):
    code, _, err = run_cli(capsys, "inspect", "memories", random_run, "--prompt", "The", "--data", tmp_path / "nope")
    assert code == 2 and "not found" in err
    # a recorded data dir that has gone away: report without triggers, say why
    moved = tmp_path / "copy"
    moved.mkdir()
    cfg = json.loads((random_run / "config.json").read_text())
    cfg["training"]["data_dir"] = str(tmp_path / "gone")
    for name in ("tokenizer.json", "model.safetensors"):
        (moved / name).write_bytes((random_run / name).read_bytes())
    (moved / "config.json").write_text(json.dumps(cfg))
    code, out, _ = run_cli(capsys, "inspect", "memories", moved, "--prompt", "The capital")
    assert code == 0 and "is missing" in out and "promotes" in out
