"""CLI verbs `sample`, `score`, `eval ppl` on a real run dir (saved with save_run), in-process and as a subprocess."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.data import prepare

REPO = Path(__file__).resolve().parents[2]


def test_sample_greedy(run_dir, capsys):
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "20"]) == 0
    assert capsys.readouterr().out == "the cat sat on the mat.\n"


def test_sample_json_has_logprobs(run_dir, capsys):
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "4",
                 "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["text"] == " sat" and d["token_strings"] == [" ", "s", "a", "t"]
    assert len(d["token_logprobs"]) == 4 and d["finish_reason"] == "length"


def test_sample_stream_beam_stop_and_batch(run_dir, capsys):
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--temperature", "0", "--max-new-tokens", "20",
                 "--stream"]) == 0
    assert capsys.readouterr().out == "the cat sat on the mat.\n"
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--beam", "3", "--max-new-tokens", "20",
                 "--stop", " on"]) == 0
    assert capsys.readouterr().out == "the cat sat\n"
    assert main(["sample", str(run_dir), "--prompt", "the cat", "--prompt", "the mat", "--temperature", "0",
                 "--max-new-tokens", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "the cat sa"


def test_prompt_longer_than_context_suggests_truncate(run_dir, capsys):
    long_prompt = "the cat sat on the mat. " * 3
    assert main(["sample", str(run_dir), "--prompt", long_prompt, "--max-new-tokens", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lmlab: error: ") and "--truncate left" in err and err.count("\n") == 1
    assert main(["sample", str(run_dir), "--prompt", long_prompt, "--max-new-tokens", "8", "--truncate", "left",
                 "--temperature", "0"]) == 0


def test_score_text_and_json(run_dir, capsys):
    assert main(["score", str(run_dir), "--text", "the cat", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["n_tokens"] == 8 and d["token_strings"][-1] == "<eos>"
    assert d["total_logprob"] == pytest.approx(sum(d["token_logprobs"]))
    assert main(["score", str(run_dir), "--text", "the cat", "--no-eos"]) == 0
    assert "over 7 tokens" in capsys.readouterr().out


def test_eval_ppl_on_text_file_and_shards(run_dir, tmp_path, capsys, trained):
    _, tok = trained
    text = tmp_path / "t.txt"
    text.write_text("the cat sat on the mat.")
    assert main(["eval", "ppl", str(run_dir), "--data", str(text), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["n_tokens"] == 24 and r["ppl"] < 2 and "bits_per_byte" in r
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(20):
        (corpus / f"{i}.txt").write_text("the cat sat on the mat." if i % 2 else "the mat sat on the cat.")
    prepare(corpus, tok, tmp_path / "shards", val_fraction=0.5, dedup="none", workers=1, progress=False)
    assert main(["eval", "ppl", str(run_dir), "--data", str(tmp_path / "shards"), "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "val split of" in out and "bits/byte" in out


def test_eval_ppl_needs_data(run_dir, capsys):
    assert main(["eval", "ppl", str(run_dir)]) == 2
    assert "pass --data" in capsys.readouterr().err


def test_not_a_run_dir_subprocess(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lmlab", "sample", str(tmp_path), "--prompt", "x"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip() == (f"lmlab: error: {tmp_path} is not a run dir (no config.json); train one with "
                                "`lmlab train` or import with `lmlab import hf-gpt2`")
    assert "Traceback" not in r.stderr


def test_mismatched_tokenizer_exit_2(run_dir, tmp_path, capsys):
    import shutil

    from lmlab.tokenization import CharTokenizer
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    CharTokenizer.train(["xyz"]).save(copy / "tokenizer.json")
    assert main(["score", str(copy), "--text", "x"]) == 2
    assert "fingerprint" in capsys.readouterr().err
