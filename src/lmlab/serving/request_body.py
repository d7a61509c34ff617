"""Reading request bodies within the size limit, and running model calls off the event loop under the model lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Callable

from fastapi import Request

from lmlab.errors import LmlabError
from lmlab.serving.errors import ApiError


async def read_body(request: Request) -> dict[str, Any]:
    """The JSON object in the request body; ApiError 413 over max_body_bytes, 400 when it is not a JSON object."""
    limit = request.app.state.served.settings.max_body_bytes
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"request body over the limit max_body_bytes={limit}", param="max_body_bytes",
                           code="request_too_large")
    try:
        data = json.loads(body or b"{}")
    except json.JSONDecodeError as e:
        raise ApiError(400, f"request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "request body must be a JSON object")
    return data


async def call_off_loop(fn: Callable, *args, lock=None, **kwargs) -> Any:
    """fn(*args, **kwargs) in a worker thread, holding `lock` when one is given; LmlabError → ApiError 400."""
    def call():
        with lock or contextlib.nullcontext():
            return fn(*args, **kwargs)
    try:
        return await asyncio.to_thread(call)
    except LmlabError as e:
        raise ApiError(400, str(e)) from None


async def call_model(state, fn: Callable, *args, **kwargs) -> Any:
    """fn(*args, **kwargs) in a worker thread holding the model lock (between two decode steps); LmlabError → 400."""
    return await call_off_loop(fn, *args, lock=state.lock, **kwargs)
