"""The batching scheduler: requests that arrive together are decoded together.

One worker thread owns the models. It waits for a request, gives others `wait_ms` to join,
then takes up to `max_batch` waiting requests for the same model and sampling settings and
decodes them in one call of `collapselab.generation.generate` (the project's own batched
decode loop, never a per-request `model.generate`). `generate` takes one set of sampling
settings per call, so requests are grouped by (model, temperature, top_p, top_k, seed);
their lengths may differ: the batch decodes to its longest `max_new_tokens` and each reply
is cut to its own. The wait list is bounded: one request more is refused (`QueueFull`),
which the app answers with 503 and Retry-After.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collapselab.serve.config import BatchingBlock
from collapselab.serve.pool import ModelPool, Served
from collapselab.serve.prompting import cut_at_stop

log = logging.getLogger("collapselab.serve")


class QueueFull(Exception):
    """The wait list is at its bound; `retry_after` is a guess at when it drains (seconds)."""

    def __init__(self, retry_after: int):
        super().__init__(f"queue full; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Sampling:
    """One request's decoding settings; temperature 0 is greedy."""

    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    seed: int | None = None

    def batch_key(self) -> tuple[Any, ...]:
        # Everything `generate` takes once per call; max_new_tokens is not in it (cut per reply).
        if self.temperature == 0:
            return ("greedy",)
        return (self.temperature, self.top_p, self.top_k, self.seed)


@dataclass(slots=True)
class Delta:
    text: str  # new reply text since the last Delta


@dataclass(slots=True)
class Done:
    text: str  # the whole reply
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    served: Served
    batch_size: int


@dataclass(slots=True)
class Failed:
    error: BaseException


Event = Delta | Done | Failed


@dataclass(slots=True)
class Job:
    """One request waiting for, or being, decoded; `sink` receives its events (worker thread)."""

    model_id: str
    prompt: list[int]
    sampling: Sampling
    stops: list[str]
    sink: Callable[[Event], None]
    enqueued: float = field(default_factory=time.monotonic)
    cancelled: bool = False


class Scheduler:
    """Owns the wait list and the worker thread that decodes batches from it."""

    def __init__(self, pool: ModelPool, cfg: BatchingBlock, on_batch: Callable[[int, float], None] | None = None):
        self.pool, self.cfg = pool, cfg
        self.on_batch = on_batch  # metrics hook: (batch size, seconds)
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._busy = 0  # jobs in the batch being decoded
        self._seeds = itertools.count(1)
        self._thread = threading.Thread(target=self._loop, name="collapselab-decode", daemon=True)
        self._batch_seconds = 1.0  # running estimate of one batch's time, for Retry-After

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the batch in progress, fail what still waits, and end the worker."""
        with self._cond:
            self._stopping = True
            left = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in left:
            job.sink(Failed(RuntimeError("server is shutting down")))
        if self._thread.is_alive():
            self._thread.join(timeout=60)

    def queue_length(self) -> int:
        with self._cond:
            return len(self._pending)

    def in_flight(self) -> int:
        with self._cond:
            return len(self._pending) + self._busy

    def submit(self, job: Job) -> None:
        """Add `job` to the wait list, or raise QueueFull when it is at its bound."""
        with self._cond:
            if self._stopping:
                raise QueueFull(5)
            if len(self._pending) >= self.cfg.max_queue:
                batches_ahead = len(self._pending) / self.cfg.max_batch + 1
                raise QueueFull(max(1, round(batches_ahead * self._batch_seconds)))
            self._pending.append(job)
            self._cond.notify_all()

    # ------------------------------------------------------------ worker

    def _take_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            # Give requests arriving together `wait_ms` to join the first one's batch.
            deadline = self._pending[0].enqueued + self.cfg.wait_ms / 1000
            while len(self._pending) < self.cfg.max_batch and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            first = self._pending[0]
            key = (first.model_id, first.sampling.batch_key())
            batch, rest = [], deque()
            for job in self._pending:
                if len(batch) < self.cfg.max_batch and (job.model_id, job.sampling.batch_key()) == key:
                    batch.append(job)
                else:
                    rest.append(job)
            self._pending = rest
            batch = [j for j in batch if not j.cancelled]
            self._busy = len(batch)
            return batch

    def _loop(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                continue
            t0 = time.perf_counter()
            try:
                self._decode(batch)
            except Exception as e:  # a failed batch fails its requests, never the worker
                log.exception("batch of %d failed", len(batch))
                for job in batch:
                    job.sink(Failed(e))
            seconds = time.perf_counter() - t0
            self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
            with self._cond:
                self._busy = 0
            if self.on_batch is not None:
                self.on_batch(len(batch), seconds)

    def _decode(self, batch: list[Job]) -> None:
        from collapselab.config import DecodingBlock
        from collapselab.generation import generate

        served = self.pool.get(batch[0].model_id)  # held by this batch even if a reload swaps it
        s = batch[0].sampling
        greedy = s.temperature == 0
        decoding = DecodingBlock(
            method="greedy" if greedy else "sample",
            temperature=1.0 if greedy else s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            batch_tokens=self.cfg.batch_tokens,
            backend="transformers",
        )
        longest = max(j.sampling.max_new_tokens for j in batch)
        seed = s.seed if s.seed is not None else next(self._seeds)
        outs = generate(
            served.model, served.tokenizer, [j.prompt for j in batch], decoding,
            max_new_tokens=longest, seed=seed, progress=False,
        )
        tok = served.tokenizer
        for job, ids in zip(batch, outs, strict=True):
            ids = ids[: job.sampling.max_new_tokens]
            text = tok.decode(ids, skip_special_tokens=True)
            text, stopped = cut_at_stop(text, job.stops)
            if stopped:
                n_tokens = len(tok(text, add_special_tokens=False)["input_ids"])
            else:
                n_tokens = len(ids)
            reason = "stop" if stopped or len(ids) < job.sampling.max_new_tokens else "length"
            text = text.removesuffix("\ufffd")  # a reply cut inside a multi-byte character
            if text:
                job.sink(Delta(text))
            job.sink(Done(text, len(job.prompt), n_tokens, reason, served, len(batch)))
