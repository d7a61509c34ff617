"""The FastAPI application: the served model's state, authentication, limits, and the OpenAI-style routes."""

from __future__ import annotations

import contextlib
import hmac
import threading
import time
from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError

from lmlab.checkpoint import load_run
from lmlab.data.instructions import load_template
from lmlab.errors import LmlabError
from lmlab.generation import set_kv_cache_storage, set_weight_storage
from lmlab.serving.chat import add_chat_routes
from lmlab.serving.completions import CompletionCall, parse_request, respond
from lmlab.serving.edits import EditLog, add_edit_routes
from lmlab.serving.engine import Engine
from lmlab.serving.errors import ApiError
from lmlab.serving.inside import add_inside_routes
from lmlab.serving.metrics import ServerMetrics
from lmlab.serving.request_body import read_body
from lmlab.serving.settings import ServerSettings
from lmlab.serving.training_spans import TrainingIndex, add_attribution_routes

STATIC = Path(str(files("lmlab.serving") / "static"))
# Paths anyone may read without the API key: the playground's files (the page asks for the key itself), the health
# check that load balancers poll, and the metrics that Prometheus scrapes (as vLLM).
OPEN_PATHS = ("/", "/health", "/metrics", "/favicon.ico")


class ServedModel:
    """Everything the routes share: the run, its lock, the decode engine, the edit log, the index of its training
    data, the metrics."""

    def __init__(self, settings: ServerSettings):
        self.settings = settings
        self.model_name = Path(settings.run_dir).resolve().name
        self.metrics = ServerMetrics()
        self.lock = threading.RLock()
        self.ready = False
        self.load_error: str | None = None
        self.started = int(time.time())
        self.engine: Engine | None = None

    def load(self) -> None:
        """Load the run and start the decode thread (in a background thread: /health says 503 until done)."""
        try:
            run = load_run(self.settings.run_dir, device=self.settings.device)
            if run.model_type != "gpt":
                raise LmlabError(f"lmlab serve serves GPT run dirs; {self.settings.run_dir} holds a "
                                 f"{run.model_type} model")
            set_weight_storage(run.model, self.settings.weights)
            set_kv_cache_storage(run.model, self.settings.kv_cache)
            self.model, self.tokenizer, self.training_config = run.model, run.tokenizer, run.training_config
            self.template = load_template(self.settings.run_dir)  # instruction-tuned runs: /v1/chat/completions
            self.block_size = run.model.config.block_size
            self.edits = EditLog(self)
            self.training_index = TrainingIndex(run, self.settings.index_dir)
            self.engine = Engine(self.model, self.tokenizer, self.lock, self.metrics,
                                 max_batch=self.settings.max_batch, max_waiting=self.settings.max_waiting)
            self.ready = True
        except Exception as e:  # noqa: BLE001 — shown by /health and every API call instead of a dead server
            self.load_error = f"{type(e).__name__}: {e}"

    def check_ready(self) -> None:
        if self.load_error:
            raise ApiError(503, f"the model failed to load: {self.load_error}", code="load_failed")
        if not self.ready:
            raise ApiError(503, "the model is still loading; retry when GET /health answers 200", code="loading")


def create_app(settings: ServerSettings, *, load_in_background: bool = True) -> FastAPI:
    """The application serving `settings.run_dir` (see docs/serving.md for the routes)."""
    state = ServedModel(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        """Load the model (in the background: /health answers 503 meanwhile); stop the decode thread at exit."""
        if load_in_background:
            threading.Thread(target=state.load, name="lmlab-load", daemon=True).start()
        else:
            state.load()
        yield
        if state.engine is not None:
            state.engine.stop()

    app = FastAPI(title="lmlab serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.served = state
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"])

    _add_guards(app, state, settings)

    @app.get("/health")
    def health():
        if state.ready:
            return {"status": "ok", "model": state.model_name}
        status = "failed: " + state.load_error if state.load_error else "loading"
        return JSONResponse({"status": status}, status_code=503)

    @app.get("/metrics")
    def metrics():
        return Response(state.metrics.exposition(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    def models():
        return {"object": "list", "data": [{"id": state.model_name, "object": "model", "created": state.started,
                                            "owned_by": "lmlab", "max_model_len": state.block_size}]}

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await respond(state, request, lambda body: CompletionCall(parse_request(body), state))

    add_chat_routes(app)

    _add_tokenizer_routes(app, state)

    @app.get("/v1/playground/config")
    def playground_config() -> dict[str, Any]:
        c = state.model.config
        return {"model": state.model_name, "n_layer": c.n_layer, "n_head": c.n_head, "block_size": c.block_size,
                "allow_edits": settings.allow_edits, "max_logprobs": settings.max_logprobs}

    add_inside_routes(app)
    add_edit_routes(app)
    add_attribution_routes(app)

    @app.get("/")
    def playground():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _add_guards(app: FastAPI, state: ServedModel, settings: ServerSettings) -> None:
    """OpenAI-style JSON errors for ApiError and invalid fields, and the checks every request passes first."""
    @app.exception_handler(ApiError)
    async def api_error(request: Request, e: ApiError):
        return e.response()

    @app.exception_handler(ValidationError)
    @app.exception_handler(RequestValidationError)
    async def bad_fields(request: Request, e):
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"] if x != "body") or None
        return ApiError(400, f"{field or 'request'}: {err['msg']}", param=field).response()

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """Body size (from Content-Length), API key, and the model being loaded, before any route runs."""
        path = request.url.path
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > settings.max_body_bytes:
            return ApiError(413, f"request body of {size} bytes is over the limit max_body_bytes="
                            f"{settings.max_body_bytes}", param="max_body_bytes", code="request_too_large").response()
        is_open = path in OPEN_PATHS or path.startswith("/static/")
        if settings.api_key and not is_open and request.method != "OPTIONS":
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {settings.api_key}".encode()):
                return ApiError(401, "missing or wrong API key: send the header `Authorization: Bearer KEY`",
                                code="invalid_api_key").response()
        if not is_open:
            try:
                state.check_ready()
            except ApiError as e:
                return e.response()
        return await call_next(request)


def _add_tokenizer_routes(app: FastAPI, state: ServedModel) -> None:
    """/tokenize, /detokenize and /tokenizer_info in vLLM's shapes (lm-eval's remote tokenizer uses them)."""
    @app.post("/tokenize")
    async def tokenize(request: Request):
        body = await read_body(request)
        prompt = body.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(400, "prompt must be a string", param="prompt")
        ids = state.tokenizer.encode(prompt)
        return {"tokens": ids, "count": len(ids), "max_model_len": state.block_size,
                "token_strs": [state.tokenizer.decode([t]) for t in ids]}

    @app.post("/detokenize")
    async def detokenize(request: Request):
        body = await read_body(request)
        tokens = body.get("tokens")
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ApiError(400, "tokens must be a list of token ids", param="tokens")
        bad = [t for t in tokens if not 0 <= t < state.tokenizer.vocab_size]
        if bad:
            raise ApiError(400, f"token id {bad[0]} is outside 0..{state.tokenizer.vocab_size - 1}", param="tokens")
        return {"prompt": state.tokenizer.decode(tokens)}

    @app.get("/tokenizer_info")
    def tokenizer_info():
        tok = state.tokenizer
        return {"eos_token": tok.decode([tok.eos_id]), "bos_token": None, "pad_token": None,
                "vocab_size": tok.vocab_size, "model_max_length": state.block_size, "tokenizer_class": tok.kind}
