"""The decode loop of a server: one thread drives a `BatchedDecoder`, so concurrent requests share every model step.

Requests come from the asyncio event loop (`Engine.submit`), wait in a bounded queue, join the batch as cache rows
free up and leave it when they finish; each token goes back to its request's asyncio queue. The model is used under
`model_lock` one step at a time, so inspection calls and edits (which take the same lock) run between two steps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lmlab.errors import LmlabError
from lmlab.generation import BatchedDecoder, TokenEvent
from lmlab.serving.errors import ApiError
from lmlab.serving.metrics import ServerMetrics


@dataclass
class Job:
    """One prompt of a request, decoded `copies` times (the request's n). Filled in by the engine: seq_ids (one
    per copy) and, through `events`, tuples (copy index, TokenEvent) — or an ApiError when the job failed."""

    prompt_ids: list[int]
    options: dict[str, Any]
    copies: int
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue
    seq_ids: list[int] = field(default_factory=list)
    submitted: float = field(default_factory=time.perf_counter)
    last_token: dict[int, float] = field(default_factory=dict)

    def deliver(self, item: Any) -> None:
        self.loop.call_soon_threadsafe(self.events.put_nowait, item)


class Engine:
    """Continuous batching behind a bounded queue (see the module docstring)."""

    def __init__(self, model, tokenizer, model_lock: threading.RLock, metrics: ServerMetrics, *, max_batch: int,
                 max_waiting: int):
        self.decoder = BatchedDecoder(model, tokenizer, max_rows=max_batch)
        self.lock, self.metrics, self.max_waiting = model_lock, metrics, max_waiting
        self._inbox: list[Job] = []
        self._by_seq: dict[int, tuple[Job, int]] = {}
        self._wake = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="lmlab-decode", daemon=True)
        self._thread.start()

    # --- called from the event loop -----------------------------------------------------------------------------
    def submit(self, jobs: list[Job]) -> None:
        """Queue the jobs of one request (all or none); ApiError 429 when the queue has no room for them."""
        with self._wake:
            waiting = self._waiting_sequences()
            wanted = sum(j.copies for j in jobs)
            if waiting + wanted > self.max_waiting:
                raise ApiError(429, f"server busy: {waiting} sequences are waiting and this request adds {wanted}; "
                               f"the queue holds max_waiting={self.max_waiting}. Retry later", param="max_waiting",
                               code="queue_full")
            self._inbox.extend(jobs)
            self._wake.notify()

    def cancel(self, jobs: list[Job]) -> None:
        """Stop decoding the jobs (their client went away)."""
        with self._wake:
            self._inbox = [j for j in self._inbox if all(j is not x for x in jobs)]
            for job in jobs:
                for s in job.seq_ids:
                    if self._by_seq.pop(s, None) is not None:
                        with self.lock:
                            self.decoder.cancel(s)
            self._update_gauges()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()
        self._thread.join(timeout=5)

    # --- the decode thread --------------------------------------------------------------------------------------
    def _waiting_sequences(self) -> int:
        return sum(j.copies for j in self._inbox) + (self.decoder.active - self.decoder.running)

    def _update_gauges(self) -> None:
        self.metrics.running.set(self.decoder.running)
        self.metrics.waiting.set(self._waiting_sequences())

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopped and not self._inbox and not self.decoder.active:
                    self._wake.wait()
                if self._stopped:
                    return
                inbox, self._inbox = self._inbox, []
                for job in inbox:
                    self._admit(job)
                self._update_gauges()
            with self.lock:
                events = self.decoder.step()
            with self._wake:
                for event in events:
                    self._deliver(event)
                self._update_gauges()

    def _admit(self, job: Job) -> None:
        try:
            job.seq_ids = self.decoder.add(job.prompt_ids, copies=job.copies, **job.options)
        except LmlabError as e:
            job.deliver(ApiError(400, str(e)))
            return
        for i, s in enumerate(job.seq_ids):
            self._by_seq[s] = (job, i)

    def _deliver(self, event: TokenEvent) -> None:
        entry = self._by_seq.get(event.seq_id)
        if entry is None:  # cancelled while this step ran
            return
        job, copy = entry
        now = time.perf_counter()
        last = job.last_token.get(copy)
        if last is None:
            self.metrics.ttft.observe(now - job.submitted)
        else:
            self.metrics.itl.observe(now - last)
        job.last_token[copy] = now
        self.metrics.generation_tokens.inc()
        if event.finish_reason is not None:
            self.metrics.e2e.observe(now - job.submitted)
            del self._by_seq[event.seq_id]
        job.deliver((copy, event))
