"""Live `lmlab serve` processes on 127.0.0.1 for the serving tests: the tiny char model of the generation tests
(trained in ~2 s) and the small world model of the editing tests (trained once, cached in .pytest_cache)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.editing.conftest import world_run  # noqa: F401  (the trained world model, built once per source)
from tests.generation.conftest import run_dir, trained  # noqa: F401  (the tiny char model)

API_KEY = "test-key"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """An `lmlab serve` subprocess; `url` is its base URL, `log` its stderr file."""

    def __init__(self, run: Path, log: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        env.pop("LMLAB_API_KEY", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "lmlab", "serve", str(run), "--port", str(self.port),
                                      *args], stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env)

    def wait_ready(self, timeout: float = 60) -> list[int]:
        """Poll /health until 200; returns the status codes seen (503 while loading, then 200)."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            try:
                code = httpx.get(self.url + "/health", timeout=2).status_code
                seen.append(code)
                if code == 200:
                    return seen
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"server not ready after {timeout} s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="session")
def tiny_server(run_dir, tmp_path_factory):  # noqa: F811
    """The tiny char model served with API key `test-key`, small limits so they can be hit."""
    server = LiveServer(run_dir, tmp_path_factory.mktemp("logs") / "tiny.log", "--api-key", API_KEY,
                        "--max-batch", "4", "--max-waiting", "8")
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def training_index(world_run, tmp_path_factory) -> Path:  # noqa: F811
    """The attribution index of the world run's training shards, in a temp dir (the cached shards stay as they are,
    so the run's default index location holds none)."""
    from lmlab.attribution import index

    path = tmp_path_factory.mktemp("attribution") / "index"
    index(world_run["data_dir"], index_dir=path)
    return path


@pytest.fixture(scope="session")
def world_server(world_run, training_index, tmp_path_factory):  # noqa: F811
    """The small world model (BPE, 4 layers) served with --allow-edits and the index of its training data, no API
    key."""
    server = LiveServer(world_run["run_dir"], tmp_path_factory.mktemp("logs") / "world.log", "--allow-edits",
                        "--edit-data", str(world_run["data_dir"]), "--index", str(training_index))
    server.wait_ready()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def edit_case(world_run):
    """The first edit request of the fixture world: {prompt with '{}', subject, target_new, target_true}."""
    from lmlab.editing import load_requests

    r = load_requests(world_run["world_dir"] / "edits.jsonl")[0]
    return {"prompt": r.prompt, "subject": r.subject, "target_new": r.target_new, "target_true": r.target_true,
            "paraphrase": (r.paraphrase_prompts or [None])[0],
            "neighbour": (r.neighborhood_prompts or [None])[0]}
