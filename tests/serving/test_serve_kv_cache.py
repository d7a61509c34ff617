"""`lmlab serve --kv-cache int8`: the engine's shared cache holds int8 keys/values and the model still answers what
it learned (in process, through FastAPI's test client)."""

from __future__ import annotations

import pytest


def test_int8_kv_cache_server_completes_like_the_trained_model(run_dir):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from lmlab.serving.app import create_app
    from lmlab.serving.settings import ServerSettings

    app = create_app(ServerSettings(run_dir=run_dir, kv_cache="int8"), load_in_background=False)
    with TestClient(app) as client:
        r = client.post("/v1/completions", json={"prompt": ["the cat", "on the"], "max_tokens": 20,
                                                 "temperature": 0})
        assert r.status_code == 200
        assert r.json()["choices"][0]["text"] == " sat on the mat."
        assert app.state.served.engine.decoder.cache.store.storage == "int8"
