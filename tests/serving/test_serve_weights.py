"""`lmlab serve --weights int8`: the served model decodes with int8 weights and still answers what it learned."""

from __future__ import annotations

import httpx
import pytest

from lmlab.cli import main

from .conftest import LiveServer

pytestmark = pytest.mark.slow


def test_int8_server_completes_like_the_trained_model(run_dir, tmp_path):
    server = LiveServer(run_dir, tmp_path / "int8.log", "--weights", "int8")
    try:
        server.wait_ready()
        r = httpx.post(server.url + "/v1/completions", timeout=30,
                       json={"prompt": "the cat", "max_tokens": 20, "temperature": 0})
        assert r.status_code == 200
        assert r.json()["choices"][0]["text"] == " sat on the mat."
    finally:
        server.stop()


def test_unknown_weights_is_refused_before_loading(run_dir, capsys):
    assert main(["serve", str(run_dir), "--weights", "int4"]) == 2
    assert capsys.readouterr().err == "lmlab: error: unknown weight storage 'int4'; choose one of fp32, bf16, int8\n"
