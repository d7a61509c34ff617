"""What a careless or hostile user types gets one line saying what was wrong (exit status 2), never a traceback,
through a real `python -m lmlab` process (argument bytes and all)."""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def lmlab(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "lmlab", *map(os.fsencode, map(str, args))], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A directory with a text file and a tiny trained char-level run in it."""
    d = tmp_path_factory.mktemp("errors")
    (d / "c.txt").write_text("".join(f"the cat number {i} sat on the mat.\n" for i in range(400)))
    r = lmlab("train", "--text", "c.txt", "--tokenizer", "char", "--out", "run", "--n_layer", "1", "--n_embd", "16",
              "--n_head", "2", "--block_size", "16", "--max_iters", "2", "--eval_iters", "1", "--no-progress",
              cwd=d)
    assert r.returncode == 0, r.stderr
    return d


NOT_UTF8 = os.fsdecode(b"\xff\xfe")  # how Python hands over argument bytes that are not UTF-8

CASES = [
    (["sample", "run", "--prompt", NOT_UTF8], "is not valid UTF-8 text"),
    (["score", "run", "--text", NOT_UTF8], "is not valid UTF-8 text"),
    (["tokenizer", "show", "run/tokenizer.json", NOT_UTF8], "is not valid UTF-8 text"),
    (["inspect", "lens", "run", "--prompt", NOT_UTF8], "is not valid UTF-8 text"),
    (["edit", "run", "--subject", NOT_UTF8, "--prompt", "{} sat", "--target-new", "x", "--out", "e"],
     "is not valid UTF-8 text"),
    (["sample", "run", "--prompt", "the", "--temperature", "nan"], "temperature must be a finite number"),
    (["sample", "run", "--prompt", "the", "--temperature", "inf"], "temperature must be a finite number"),
    (["sample", "run", "--prompt", "the", "--device", "banana"], "unknown device 'banana'"),
    (["score", "run", "--text", "the", "--device", "banana"], "unknown device 'banana'"),
    (["eval", "ppl", "run", "--device", "banana"], "unknown device 'banana'"),
    (["eval", "ppl", "run", "--stride", "0"], "stride must be between 1 and block_size"),
    (["train", "--data", "c.txt", "--out", "r2"], "is a file, not a shard directory"),
    (["tokenizer", "train", "--kind", "char", "c.txt", "--out", "run"], "run is a directory; give the path of a file"),
    (["train", "--text", "c.txt", "--out", "c.txt/run"], "cannot write in c.txt/run"),
    (["tokenizer", "train", "--kind", "char", "c.txt", "--out", "c.txt/tok.json"], "c.txt is a file, so"),
    (["locate", "run", "--out", "c.txt", "--prompt", "the cat", "--subject", "cat", "--target", "sat"],
     "--out c.txt is a file"),
]
import torch  # noqa: E402

if not torch.cuda.is_available():  # the CI machines have no GPU; on one that has, cuda is a valid choice
    CASES += [(["sample", "run", "--prompt", "the", "--device", "cuda"], "no usable CUDA GPU"),
              (["eval", "ppl", "run", "--device", "cuda"], "no usable CUDA GPU")]


@pytest.mark.parametrize("args, message", CASES, ids=[" ".join(a[:2]) + f" #{i}" for i, (a, _) in enumerate(CASES)])
def test_one_line_error(work, args, message):
    r = lmlab(*args, cwd=work)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert message in r.stderr and r.stderr.startswith("lmlab: error:"), r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories anyway")
def test_out_in_a_read_only_directory(work, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        r = lmlab("train", "--text", "c.txt", "--tokenizer", "char", "--out", ro / "run", "--max_iters", "1",
                  cwd=work)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "cannot write in" in r.stderr, r.stderr
        r = lmlab("tokenizer", "train", "--kind", "char", "c.txt", "--out", ro / "tok.json", cwd=work)
        assert r.returncode == 2 and "Traceback" not in r.stderr and "Permission denied" in r.stderr, r.stderr
    finally:
        ro.chmod(0o700)


def test_replaced_tokenizer_with_fewer_ids_warns(work, tmp_path):
    """A tokenizer.json swapped for a smaller one, with config.json's fingerprint edited to match, passes the
    fingerprint check; the size gap between model and tokenizer is still reported."""
    import json
    import shutil

    from lmlab.tokenization import CharTokenizer

    run = tmp_path / "run"
    shutil.copytree(work / "run", run)
    small = CharTokenizer.train(["ab"], byte_fallback=False)
    small.save(run / "tokenizer.json")
    cfg = json.loads((run / "config.json").read_text())
    cfg["tokenizer_fingerprint"] = small.fingerprint
    (run / "config.json").write_text(json.dumps(cfg))
    r = lmlab("sample", run, "--prompt", "ab", "--max-new-tokens", "2", cwd=work)
    assert "lmlab: warning:" in r.stderr and "its tokenizer only" in r.stderr, r.stderr
