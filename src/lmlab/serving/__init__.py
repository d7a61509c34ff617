"""Serve a run dir over HTTP: an OpenAI-compatible completions API (as vLLM implements it), endpoints that show
what happens inside the model (logit lens, FFN memories, attention, interventions), ROME edits of the served
weights, the verbatim training spans of a text (over the run's attribution index), Prometheus metrics, and a
playground page. Concurrent requests are decoded together (continuous batching,
lmlab.generation.batching). See docs/serving.md.

    from lmlab.serving import serve
    serve("runs/tiny", port=8000)          # CLI: lmlab serve runs/tiny

FastAPI, uvicorn and prometheus-client come with the `serve` extra; importing this package needs none of them.
"""

from lmlab.serving.server import serve

__all__ = ["serve"]
