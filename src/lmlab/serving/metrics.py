"""Prometheus metrics of one server (own registry, so several servers can live in one process, e.g. in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Buckets in seconds: a tiny CPU model answers in milliseconds, a large one on a busy machine in seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServerMetrics:
    """The series `GET /metrics` exposes (names follow vLLM's, prefixed `lmlab:`)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge("lmlab:num_requests_running", "Sequences being decoded now", registry=r)
        self.waiting = Gauge("lmlab:num_requests_waiting", "Sequences waiting for a decoding slot", registry=r)
        self.ttft = Histogram("lmlab:time_to_first_token_seconds", "Time from request to its first token",
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.itl = Histogram("lmlab:inter_token_latency_seconds", "Time between two tokens of one sequence",
                             buckets=_LATENCY_BUCKETS, registry=r)
        self.e2e = Histogram("lmlab:e2e_request_latency_seconds", "Time from request to its last token",
                             buckets=_LATENCY_BUCKETS, registry=r)
        self.prompt_tokens = Counter("lmlab:prompt_tokens", "Prompt tokens processed", registry=r)
        self.generation_tokens = Counter("lmlab:generation_tokens", "Tokens generated", registry=r)
        self.requests = Counter("lmlab:requests", "Completion requests answered, by HTTP status", ["status"],
                                registry=r)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)
