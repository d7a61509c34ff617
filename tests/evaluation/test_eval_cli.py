"""`lmlab eval tasks` and `lmlab eval list`: table, results JSON, per-item log, errors without tracebacks."""

import json
import subprocess
import sys

from lmlab.cli import main


def test_eval_list_prints_builtins_one_per_line():
    out = subprocess.run([sys.executable, "-m", "lmlab", "eval", "list"], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert any(line.startswith("arithmetic_2da ") and "2D+" in line for line in lines)
    assert any(line.startswith("scramble_scramble_reversed_words ") for line in lines)
    assert any(line.startswith("blimp ") for line in lines)


def test_eval_tasks_writes_table_results_and_item_log(random_run, world_dir, tmp_path, capsys):
    out = tmp_path / "res" / "results.json"
    rc = main(["eval", "tasks", str(random_run), "--tasks", "2D+,temporal", "--shots", "0,1", "--limit", "3",
               "--world", str(world_dir), "--out", str(out), "--no-progress"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "arithmetic_2da" in printed and "exact_match" in printed and "marker=past" in printed
    report = json.loads(out.read_text())
    assert [(r["task"], r["shots"]) for r in report["results"]] == [
        ("arithmetic_2da", 0), ("arithmetic_2da", 1), ("temporal", 0), ("temporal", 1)]
    assert report["settings"]["shots"] == [0, 1] and report["tasks"]["temporal"]["output_type"] == "multiple_choice"
    items = [json.loads(line) for line in (tmp_path / "res" / "results.items.jsonl").read_text().splitlines()]
    assert len(items) == 12
    first = items[0]
    assert {"task", "shots", "prompt", "target", "prediction", "score"} <= set(first)
    assert first["prompt"].endswith("A:") and first["prompt"].count("Q:") == 1
    one_shot = [it for it in items if it["task"] == "arithmetic_2da" and it["shots"] == 1][0]
    assert one_shot["prompt"].count("Q:") == 2


def test_eval_tasks_errors_are_one_line(random_run, tmp_path, capsys):
    missing = tmp_path / "absent.jsonl"
    proc = subprocess.run([sys.executable, "-m", "lmlab", "eval", "tasks", str(random_run), "--tasks",
                           f"blimp:{missing}", "--out", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("lmlab: error:") and str(missing) in proc.stderr and "Traceback" not in proc.stderr
    assert main(["eval", "tasks", str(random_run), "--tasks", "2D+", "--shots", "a,b"]) == 2
    assert "--shots" in capsys.readouterr().err
