"""`lmlab serve`: an OpenAI-compatible HTTP API and a playground page over a run dir."""

from __future__ import annotations

from lmlab.cli.options import add_device, add_kv_cache, add_run_dir, add_weights


def serve_arguments(p) -> None:
    add_run_dir(p, "run dir of a GPT (e.g. runs/tiny)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", default=None, metavar="KEY",
                   help="require `Authorization: Bearer KEY` on every API call (default: $LMLAB_API_KEY, else none)")
    p.add_argument("--allow-edits", action="store_true",
                   help="let clients rewrite facts in the served weights with ROME (POST/DELETE /v1/edits)")
    p.add_argument("--edit-data", default=None, metavar="PATH",
                   help="shards or text for ROME's key statistics (default: the run's training shards)")
    p.add_argument("--max-batch", type=int, default=32, metavar="N", help="sequences decoded together (default 32)")
    p.add_argument("--max-waiting", type=int, default=256, metavar="N",
                   help="sequences queued before requests are refused with 429 (default 256)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from ORIGIN to call the API (repeatable; default: CORS off)")
    add_device(p)
    add_weights(p)
    add_kv_cache(p)
    p.add_argument("--index", default=None, metavar="DIR", help="attribution index of the run's training shards for "
                   "/v1/attribution/spans (default DATA_DIR/attribution-index, from `lmlab attribute index`)")


def cmd_serve(args) -> int:
    """serve a run dir: OpenAI-compatible API and a playground page

    Serve a GPT run dir over HTTP until interrupted: an OpenAI-compatible completions API (/v1/completions,
    /v1/chat/completions for instruction-tuned runs, /v1/models, /tokenize, /detokenize, /health, /metrics),
    endpoints that look inside the model, and a playground page at /. Concurrent requests are decoded together. See
    docs/serving.md.
    """
    from lmlab.serving import serve

    serve(args.run_dir, host=args.host, port=args.port, api_key=args.api_key, allow_edits=args.allow_edits,
          max_batch=args.max_batch, max_waiting=args.max_waiting, edit_data=args.edit_data,
          cors_origins=args.cors_origin, device=args.device, weights=args.weights, kv_cache=args.kv_cache,
          index_dir=args.index)
    return 0
