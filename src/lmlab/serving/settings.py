"""What a server serves and the limits it enforces (every limit is named in the error a client gets)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ServerSettings:
    """Options of `lmlab serve` (see docs/serving.md)."""

    run_dir: Path
    api_key: str | None = None          # when set, every API call must send `Authorization: Bearer KEY`
    allow_edits: bool = False           # POST/DELETE /v1/edits change the served weights: refused unless set
    edit_data: str | None = None        # text for ROME's key statistics (default: the run's training shards)
    edit_stats_tokens: int = 20_000     # tokens of that text read for the statistics
    cors_origins: list[str] = field(default_factory=list)  # browser origins allowed to call the API (none: CORS off)
    max_batch: int = 32                 # sequences decoded together (rows of the shared KV cache)
    max_waiting: int = 256              # sequences queued for a row before requests get 429
    max_prompt_tokens: int | None = None  # default: the model's context
    max_tokens: int | None = None       # largest max_tokens (default: context - 1)
    max_n: int = 16                     # largest n (choices per prompt)
    max_prompts: int = 64               # most prompts in one request
    max_logprobs: int = 20              # largest logprobs (top alternatives per token), as OpenAI
    max_body_bytes: int = 1_000_000     # largest request body
    index_dir: str | None = None        # index of the run's training shards (default DATA_DIR/attribution-index)
    max_trace_tokens: int = 2048        # longest text /v1/attribution/spans traces
    device: str = "cpu"
    weights: str = "fp32"               # how the Linear weights are held for decoding: fp32 | bf16 | int8
    kv_cache: str = "fp32"              # how the KV cache holds keys/values: fp32 | bf16 | int8
