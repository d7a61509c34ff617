"""`lmlab data prepare` / `lmlab data stats` through the real CLI: summaries, and one-line errors with exit 2."""

import subprocess
import sys

from lmlab.cli import main
from lmlab.tokenization import CharTokenizer


def corpus(tmp_path):
    d = tmp_path / "corpus"
    d.mkdir()
    for i in range(10):
        (d / f"{i}.txt").write_text(f"Story {i}. Once upon a time there were {i} bears.\n")
    return d


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prepare_and_stats_print_summaries(tmp_path, capsys):
    code, out, err = run_cli(capsys, "data", "prepare", str(corpus(tmp_path)), "--tokenizer", "bpe",
                             "--vocab-size", "300", "--out", str(tmp_path / "data"), "--val-fraction", "0.2",
                             "--no-progress")
    assert code == 0, err
    assert "read 10 documents from 10 file(s)" in out and "duplicates removed: 0 exact" in out
    assert "train: 8 documents" in out and "val  : 2 documents" in out and "tokenizer: bpe, vocab " in out
    code, out, err = run_cli(capsys, "data", "stats", str(tmp_path / "data"))
    assert code == 0 and "tokens/byte" in out and "top train tokens" in out


def check_error(capsys, argv, *needles):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2
    assert err.startswith("lmlab: error: ") and err.count("\n") == 1 and "Traceback" not in err
    for n in needles:
        assert n in err, err


def test_user_mistakes_are_one_line_errors(tmp_path, capsys):
    out = str(tmp_path / "data")
    check_error(capsys, ["data", "prepare", str(tmp_path / "missing"), "--tokenizer", "char", "--out", out],
                "input path not found", "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "blank.txt").write_text("\n\n")
    check_error(capsys, ["data", "prepare", str(tmp_path / "empty"), "--tokenizer", "char", "--out", out],
                "empty corpus")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"hello \xe9t\xe9")
    check_error(capsys, ["data", "prepare", str(bad), "--tokenizer", "char", "--out", out],
                "bad.txt", "byte offset 6", "--errors replace")
    check_error(capsys, ["data", "prepare", str(bad), "--tokenizer", "nosuch.json", "--out", out],
                "neither a tokenizer file nor a kind")
    # Fingerprint mismatch: the shards were made with another tokenizer than the one named.
    assert run_cli(capsys, "data", "prepare", str(corpus(tmp_path)), "--tokenizer", "char", "--out", out,
                   "--no-progress")[0] == 0
    CharTokenizer("abc").save(tmp_path / "other.json")
    check_error(capsys, ["data", "stats", out, "--tokenizer", str(tmp_path / "other.json")],
                "were made with tokenizer", "into a new directory")
    check_error(capsys, ["data", "stats", str(tmp_path)], "no manifest.json")


def test_non_utf8_error_in_a_real_subprocess(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("naïve".encode("latin-1"))
    proc = subprocess.run([sys.executable, "-m", "lmlab", "data", "prepare", str(bad), "--tokenizer", "char",
                           "--out", str(tmp_path / "data")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"lmlab: error: {bad}: not valid UTF-8 at byte offset 2 (byte 0xef); convert the file to UTF-8, "
        "or pass --errors replace to substitute U+FFFD"]
    assert not (tmp_path / "data").exists()
