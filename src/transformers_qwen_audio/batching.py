# Copyright 2025 The transformers-qwen-audio authors.
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
"""
The dynamic batcher shared by the server and the web demo: requests that arrive while the model is busy, or within a short window of each other, run as
one batch. Written by hand because transformers' continuous batching needs paged attention over text-only inputs
(no audio features), and the serving frameworks that batch (vLLM, TGI) cannot run on these machines; the pipeline's
batch == alone guarantee is what makes grouping unrelated requests safe.

One worker thread owns the model: generation never runs concurrently, and the event loop never blocks on it.
`StopWhenCancelled` ends a streamed generation (which runs beside the batcher) once its reader has gone.
"""

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import StoppingCriteria


logger = logging.getLogger(__name__)

_STOP = object()


class QueueFullError(RuntimeError):
    """More requests are waiting than the batcher accepts."""


@dataclass
class _Job:
    payload: Any
    key: Hashable | None  # jobs with equal keys may run together; None: alone
    future: Future = field(default_factory=Future)


@dataclass
class BatcherStats:
    """What the batcher did: `batch_sizes[n]` is how many model calls ran `n` requests together."""

    requests: int = 0
    batch_sizes: Counter = field(default_factory=Counter)
    fallbacks: int = 0  # failed batches re-run request by request

    @property
    def model_calls(self) -> int:
        return sum(self.batch_sizes.values())

    @property
    def largest_batch(self) -> int:
        return max(self.batch_sizes, default=0)

    def to_dict(self) -> dict:
        return {"requests": self.requests, "model_calls": self.model_calls, "largest_batch": self.largest_batch,
                "batch_sizes": {str(size): count for size, count in sorted(self.batch_sizes.items())},
                "fallbacks": self.fallbacks}


class DynamicBatcher:
    """
    Runs `run_batch(payloads) -> results` (one result per payload, in order) on a worker thread.

    The worker takes the oldest waiting job, then gathers more for up to `max_wait_s` (or until `max_batch_size`
    jobs), and runs the jobs of equal key together, in order of arrival. A job with key `None` runs alone. When a
    batch fails, its jobs are re-run one by one, so that only the faulty request gets the error.
    """

    def __init__(self, run_batch: Callable[[list], list], max_batch_size: int = 8, max_wait_s: float = 0.01,
                 max_pending: int = 256, name: str = "qwen-audio-batcher"):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {max_batch_size}.")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s}.")
        self.run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.max_pending = max_pending
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, payload, key: Hashable | None = None) -> Future:
        """Queues one request; the returned future gives its result (or raises its error)."""
        if self._closed:
            raise RuntimeError("The batcher is closed.")
        if self._queue.qsize() >= self.max_pending:
            raise QueueFullError(f"{self.max_pending} requests are already waiting.")
        job = _Job(payload, key)
        self._queue.put(job)
        return job.future

    def close(self, timeout: float | None = 30.0) -> None:
        """Stops the worker after the job it is running; waiting jobs fail with `RuntimeError`."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is not _STOP and job.future.set_running_or_notify_cancel():
                job.future.set_exception(RuntimeError("The server is shutting down."))

    # ------------------------------------------------------------------------------------------------------------
    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs, stop = [first], False
        if first.key is None:
            return jobs, stop
        deadline = time.monotonic() + self.max_wait_s
        while len(jobs) < self.max_batch_size:
            try:
                # What is already waiting is taken at once; then new arrivals until the window closes.
                job = self._queue.get(timeout=max(deadline - time.monotonic(), 0)) if self.max_wait_s else \
                    self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                stop = True
                break
            jobs.append(job)
        return jobs, stop

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs, stop = self._gather(first)
            groups: dict = {}
            for job in jobs:
                groups.setdefault(job.key if job.key is not None else object(), []).append(job)
            for group in groups.values():
                self._run(group)
            if stop:
                return

    def _run(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
        if self._closed:
            for job in jobs:
                job.future.set_exception(RuntimeError("The server is shutting down."))
            return
        if not jobs:
            return
        self.stats.requests += len(jobs)
        self.stats.batch_sizes[len(jobs)] += 1
        try:
            results = self.run_batch([job.payload for job in jobs])
        except BaseException as error:  # noqa: BLE001 - handed to the waiting request(s)
            if len(jobs) == 1:
                jobs[0].future.set_exception(error)
                return
            logger.warning("A batch of %d requests failed (%s); running them one by one.", len(jobs), error)
            self.stats.fallbacks += 1
            for job in jobs:
                self.stats.batch_sizes[1] += 1
                try:
                    job.future.set_result(self.run_batch([job.payload])[0])
                except BaseException as single_error:  # noqa: BLE001
                    job.future.set_exception(single_error)
            return
        for job, result in zip(jobs, results):
            job.future.set_result(result)


class StopWhenCancelled(StoppingCriteria):
    """Ends a streamed generation whose reader went away (the server's clients, the web demo's page): every row stops
    once `event` is set."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)
