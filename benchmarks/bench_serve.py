"""Load test of `lmlab serve`: 32 concurrent clients vs the same requests sent one at a time, on loopback only.

Starts `lmlab serve RUN_DIR` on a free port of 127.0.0.1 (a subprocess, one torch thread), then sends
`--requests` completion requests (greedy, `--max-tokens` new tokens, prompts cut from the run's tokenizer-friendly
texts below) twice: one at a time (the peer: no batching possible), then from `--clients` concurrent streaming
clients. Each request streams, so time to first token is measured where a client sees it. Bounded: a fixed number
of requests, a timeout per request, and the server is stopped at the end.

    python benchmarks/bench_serve.py RUN_DIR [--clients 32] [--requests 96] [--max-tokens 32]

The last line is `RESULT tok_s_serial=... tok_s_concurrent=... speedup=... p50_s=... p99_s=... ttft_p50_s=...
ttft_p99_s=... errors=...` (latencies of the concurrent run; tokens/s counts generated tokens).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import time

import httpx

PROMPTS = ["The capital of", "In the north of the country", "The official language of", "People in",
           "Every morning the", "The river flows", "A merchant from", "It was the year"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def one_request(client: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> dict:
    """Stream one completion; returns {latency, ttft, tokens} or {error}."""
    t0 = time.perf_counter()
    ttft, tokens = None, 0
    body = {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "stream": True, "logprobs": 0}
    try:
        async with client.stream("POST", url + "/v1/completions", json=body, timeout=120) as r:
            if r.status_code != 200:
                return {"error": r.status_code}
            async for line in r.aiter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line[6:])
                if chunk["choices"]:
                    tokens += 1  # with logprobs set, the server sends one chunk per token
                    ttft = ttft if ttft is not None else time.perf_counter() - t0
    except httpx.HTTPError as e:
        return {"error": type(e).__name__}
    return {"latency": time.perf_counter() - t0, "ttft": ttft, "tokens": tokens}


async def run_load(url: str, n_requests: int, clients: int, max_tokens: int) -> tuple[list[dict], float]:
    queue = list(range(n_requests))
    results: list[dict] = []

    async def worker(client):
        while queue:
            i = queue.pop()
            results.append(await one_request(client, url, PROMPTS[i % len(PROMPTS)], max_tokens))

    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(limits=limits) as client:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(clients)))
        return results, time.perf_counter() - t0


def quantile(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "lmlab", "serve", args.run_dir, "--port", str(port),
                               "--max-batch", str(args.clients), "--max-waiting", str(4 * args.clients)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.1)
        asyncio.run(run_load(url, 4, 1, args.max_tokens))  # warm-up
        serial, t_serial = asyncio.run(run_load(url, args.requests, 1, args.max_tokens))
        conc, t_conc = asyncio.run(run_load(url, args.requests, args.clients, args.max_tokens))
    finally:
        server.terminate()
        server.wait(timeout=10)
    errors = sum("error" in r for r in serial + conc)
    ok = [r for r in conc if "error" not in r]
    tok_serial = sum(r.get("tokens", 0) for r in serial) / t_serial
    tok_conc = sum(r["tokens"] for r in ok) / t_conc
    lat, ttft = [r["latency"] for r in ok], [r["ttft"] for r in ok]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; run {args.run_dir}; "
          f"{args.requests} requests × {args.max_tokens} tokens, greedy")
    print(f"one at a time: {tok_serial:.1f} tok/s ({t_serial:.1f} s)")
    print(f"{args.clients} clients:    {tok_conc:.1f} tok/s ({t_conc:.1f} s), latency p50 {quantile(lat, .5):.3f} s "
          f"p99 {quantile(lat, .99):.3f} s, TTFT p50 {quantile(ttft, .5):.3f} s p99 {quantile(ttft, .99):.3f} s")
    print(f"RESULT tok_s_serial={tok_serial:.1f} tok_s_concurrent={tok_conc:.1f} speedup={tok_conc / tok_serial:.2f} "
          f"p50_s={quantile(lat, .5):.3f} p99_s={quantile(lat, .99):.3f} ttft_p50_s={quantile(ttft, .5):.3f} "
          f"ttft_p99_s={quantile(ttft, .99):.3f} errors={errors}")


if __name__ == "__main__":
    main()
