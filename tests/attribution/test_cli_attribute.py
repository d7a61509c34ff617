"""`lmlab attribute ...` and `lmlab eval ppl --knn/--infgram` through the real CLI entry point: in-process
(`lmlab.cli.main`, each process start costs seconds of torch import) except one subprocess that checks what a
user sees for a missing index."""

import json
import shutil
import subprocess
import sys
from types import SimpleNamespace

import pytest

from lmlab.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def lmlab(capsys):
    def run(*args, ok=True):
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert (code == 0) == ok, err
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)
    return run


def test_index_count_find_trace_and_memorisation(world_run, tmp_path, lmlab):
    data = tmp_path / "data"
    shutil.copytree(world_run["data_dir"], data)
    missing = subprocess.run([sys.executable, "-m", "lmlab", "attribute", "count", str(data), "The capital of"],
                             capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2 and "lmlab attribute index" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1 and "Traceback" not in missing.stderr
    assert "bytes/token" in lmlab("attribute", "index", data).stdout
    n = int(lmlab("attribute", "count", data, "The capital of").stdout)
    assert n > 0
    found = json.loads(lmlab("attribute", "find", data, "The capital of", "--limit", 2, "--json").stdout)
    assert found["count"] == n and len(found["occurrences"]) == 2
    assert lmlab("attribute", "count", data, "", ok=False).stderr.startswith("lmlab: error: the query is empty")
    # the run was trained on the cached shards; --data points it at this indexed copy of the same shards
    out = lmlab("attribute", "trace", world_run["run_dir"], "--data", data, "--prompt", "The capital of",
                "--max-new-tokens", 30).stdout
    assert "[[" in out and "verbatim span(s)" in out and "doc " in out
    mem = lmlab("attribute", "memorisation", world_run["run_dir"], "--data", data, "--samples", 3,
                "--max-new-tokens", 16, "--k", "2,8").stdout
    assert "held-out" in mem and len([line for line in mem.splitlines() if line.strip().startswith(("2 ", "8 "))]) == 2


def test_knn_neighbours_and_eval_ppl(world_run, tmp_path, lmlab):
    data = tmp_path / "data"
    shutil.copytree(world_run["data_dir"], data)
    out = lmlab("attribute", "knn", world_run["run_dir"], "--data", data, "--out", tmp_path / "ds",
                "--max-tokens", 2000).stdout
    assert "1,999 keys" in out
    nb = lmlab("attribute", "neighbours", world_run["run_dir"], "--datastore", tmp_path / "ds",
               "--prompt", "The capital of", "--k", 3).stdout
    assert nb.count(" doc ") == 3
    lmlab("attribute", "index", data)
    r = json.loads(lmlab("eval", "ppl", world_run["run_dir"], "--data", data, "--knn", tmp_path / "ds",
                         "--infgram", data, "--lambda", 0.25, "--k", 8, "--max-tokens", 300, "--json").stdout)
    assert r["knn"]["lambda"] == 0.25 and r["knn"]["k"] == 8 and "infgram" in r and r["n_tokens"] == 299
    bad = lmlab("eval", "ppl", world_run["run_dir"], "--data", data, "--knn", tmp_path / "ds", "--k", 99999,
                ok=False)
    assert "datastore holds 1999 keys" in bad.stderr
