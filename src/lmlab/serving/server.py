"""`serve`: run the HTTP API and the playground for one run dir with uvicorn."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

from lmlab.checkpoint import is_run_dir
from lmlab.errors import LmlabError
from lmlab.generation import check_kv_storage, check_weight_storage

# What `pip install` needs for `lmlab serve`, in one message when a module of the `serve` extra is missing.
_MISSING = "lmlab serve needs the `serve` extra: pip install -e \".[serve]\" (FastAPI, uvicorn, prometheus-client); missing: {}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def serve(run_dir: str | os.PathLike, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          allow_edits: bool = False, max_batch: int = 32, max_waiting: int = 256, edit_data: str | None = None,
          cors_origins: list[str] | None = None, device: str = "cpu", log_level: str = "info",
          weights: str = "fp32", kv_cache: str = "fp32", index_dir: str | os.PathLike | None = None) -> None:
    """Serve `run_dir` (a GPT run dir) on http://host:port/ until interrupted: the OpenAI-compatible API under /v1,
    /tokenize, /detokenize, /health, /metrics, and the playground page at /. api_key: required as a Bearer token
    on every API call when set (default: the LMLAB_API_KEY environment variable). weights: how the Linear weights
    are held for decoding, "fp32" | "bf16" | "int8" (lmlab.generation.set_weight_storage). kv_cache: how the shared
    KV cache holds keys/values, "fp32" | "bf16" | "int8" (lmlab.generation.set_kv_cache_storage). index_dir: the
    suffix-array index of the run's training shards that /v1/attribution/spans searches (default:
    DATA_DIR/attribution-index of the data dir the run recorded; build it with `lmlab attribute index DATA_DIR`).
    See docs/serving.md."""
    if not is_run_dir(run_dir):
        raise LmlabError(f"{run_dir} is not a run dir (no config.json); train one with `lmlab train` first")
    if not 0 <= port <= 65535:
        raise LmlabError(f"--port must be between 0 and 65535, got {port}")
    check_weight_storage(weights)
    check_kv_storage(kv_cache)
    if max_batch < 1 or max_waiting < 1:
        raise LmlabError("--max-batch and --max-waiting must be at least 1")
    try:
        import fastapi  # noqa: F401
        import prometheus_client  # noqa: F401
        import uvicorn
    except ImportError as e:
        raise LmlabError(_MISSING.format(e.name)) from None
    from lmlab.serving.app import create_app
    from lmlab.serving.settings import ServerSettings

    api_key = api_key or os.environ.get("LMLAB_API_KEY") or None
    if not _is_loopback(host) and not api_key:
        print(f"lmlab serve: warning: listening on {host} without an API key: anyone who can reach this machine "
              "can use (and, with --allow-edits, change) the model", file=sys.stderr)
    settings = ServerSettings(run_dir=Path(run_dir), api_key=api_key, allow_edits=allow_edits, max_batch=max_batch,
                              max_waiting=max_waiting, edit_data=edit_data, cors_origins=list(cors_origins or []),
                              device=device, weights=weights, kv_cache=kv_cache, index_dir=index_dir)
    app = create_app(settings)
    print(f"lmlab serve: {run_dir} on http://{host}:{port}/ (API under /v1, playground at /)", file=sys.stderr,
          flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)
