"""One writer per run dir: a second `lmlab train` on a run that is training is refused with the holder's PID; a
lock left by a killed process never blocks; a killed writer's temp files are cleaned by the next one; a directory
of someone else's files is never trained into."""

import os
import signal
import subprocess
import time

import pytest

from .conftest import TINY

pytestmark = pytest.mark.slow


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, **kw)


def test_second_writer_is_refused_and_a_killed_holder_does_not_block(tmp_path, python_cmd, char_data):
    run = tmp_path / "conc"
    base = [*python_cmd, "train", "--data", str(char_data), *TINY, "--eval_interval", "5", "--eval_iters", "1",
            "--no-progress"]
    first = subprocess.Popen([*base, "--out", str(run), "--max_iters", "100000"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while not (run / "train_state.pt").exists():
            assert first.poll() is None, first.stderr.read().decode()
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.01)
        for extra in (["--seed", "7", "--overwrite"], ["--resume"]):
            r = _run([*base, "--out", str(run), "--max_iters", "10", *extra])
            assert r.returncode == 2, r.stderr
            assert f"in use by PID {first.pid} (lmlab train)" in r.stderr and "Traceback" not in r.stderr
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    # What a kill during a save leaves behind; the next writer removes it once it holds the lock.
    leftover = run / ".train_state.pt.x1y2z3.tmp"
    leftover.write_bytes(b"half a checkpoint")
    r = _run([*base, "--out", str(run), "--resume", "--max_iters", "10"])
    assert r.returncode == 0, r.stderr
    assert not leftover.exists()


def test_out_must_be_a_new_empty_or_run_dir(tmp_path, python_cmd, char_data):
    base = [*python_cmd, "train", "--data", str(char_data), *TINY, "--max_iters", "2", "--eval_iters", "0",
            "--no-progress"]
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    r = _run([*base, "--out", str(mine)])
    assert r.returncode == 2 and "is not empty and is not a run dir (it holds thesis.tex)" in r.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["thesis.tex"]  # nothing written there, not even the lock
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    r = _run([*base, "--out", str(a_file)])
    assert r.returncode == 2 and "is a file, not a directory" in r.stderr
    r = _run([*base, "--out", str(tmp_path / "nothing"), "--resume"])
    assert r.returncode == 2 and "nothing to resume" in r.stderr
    assert not (tmp_path / "nothing").exists()  # a failed start leaves no empty directory behind
