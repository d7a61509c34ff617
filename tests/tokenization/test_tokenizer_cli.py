"""`lmlab tokenizer train|show`, in-process through lmlab.cli.main and once as a real subprocess."""

import subprocess
import sys
from pathlib import Path

import pytest

from lmlab.cli import main
from lmlab.tokenization import load_tokenizer


@pytest.fixture()
def text_dir(tmp_path, corpus):
    d = tmp_path / "texts"
    d.mkdir()
    (d / "one.txt").write_text("".join(corpus[:200]), encoding="utf-8")
    (d / "two.txt").write_text("".join(corpus[200:]) + "order 12345 paid\n" * 20, encoding="utf-8")
    return d


def test_train_then_show_digits(tmp_path, text_dir, capsys):
    out = tmp_path / "tok.json"
    rc = main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "400", "--numbers", "digits",
               "--special", "<extract>", "--special", "<sep>", str(text_dir), "--out", str(out), "--quiet"])
    assert rc == 0
    summary = capsys.readouterr().out.strip().splitlines()
    assert len(summary) == 1 and "vocab_size=400" in summary[0] and "numbers=digits" in summary[0]
    tok = load_tokenizer(out)
    assert tok.special_tokens[-2:] == ["<extract>", "<sep>"] and tok.fingerprint in summary[0]

    assert main(["tokenizer", "show", str(out), "12345"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[-1] for line in lines[1:6]] == ["'1'", "'2'", "'3'", "'4'", "'5'"]
    assert lines[-1].startswith("5 tokens")


def test_show_marks_spaces_and_reports_integers(tmp_path, text_dir, capsys):
    out = tmp_path / "tok.json"
    assert main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "400", str(text_dir / "two.txt"),
                 "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["tokenizer", "show", str(out), "paid 12345", "--integers", "100"]) == 0
    text = capsys.readouterr().out
    assert "'Ġ" in text and "' " in text  # the byte-level token and what it spells, space made visible
    assert "integers 0..100" in text and "distinct tokens" in text


@pytest.mark.parametrize("kind", ["char", "word"])
def test_train_char_and_word(tmp_path, text_dir, capsys, kind):
    out = tmp_path / f"{kind}.json"
    assert main(["tokenizer", "train", "--kind", kind, "--min-frequency", "2", str(text_dir), "--out", str(out),
                 "--quiet"]) == 0
    assert f"trained {kind} tokenizer" in capsys.readouterr().out
    assert load_tokenizer(out).kind == kind


def test_user_mistakes_exit_2_with_one_line(tmp_path, text_dir, capsys):
    assert main(["tokenizer", "train", "--kind", "bpe", "--vocab-size", "10", str(text_dir),
                 "--out", str(tmp_path / "t.json"), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("lmlab: error: vocab_size 10 is too small")
    assert main(["tokenizer", "train", "--kind", "char", str(tmp_path / "missing.txt"),
                 "--out", str(tmp_path / "t.json")]) == 2
    assert "input not found" in capsys.readouterr().err
    assert main(["tokenizer", "show", str(tmp_path / "missing.json"), "x"]) == 2
    assert "tokenizer file not found" in capsys.readouterr().err
    assert not (tmp_path / "t.json").exists()


def test_real_subprocess(tmp_path, text_dir):
    exe = Path(sys.executable).with_name("lmlab")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "lmlab"]
    out = tmp_path / "tok.json"
    res = subprocess.run(cmd + ["tokenizer", "train", "--kind", "bpe", "--vocab-size", "600", "--numbers", "groups3",
                                str(text_dir), "--out", str(out)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # not a terminal: no progress bar
    res = subprocess.run(cmd + ["tokenizer", "show", str(out), "12345"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "'123'" in res.stdout and "'45'" in res.stdout and "2 tokens" in res.stdout
