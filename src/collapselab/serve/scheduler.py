"""The batching scheduler: requests that arrive together are decoded together.

One worker thread owns the models. It waits for a request, gives others `wait_ms` to join,
then takes up to `max_batch` waiting requests for the same model and decodes them in one call
of `collapselab.generation.generate` (the project's own batched decode loop, never a
per-request `model.generate`): each prompt with its own temperature, top-p, top-k and reply
length, the batch's common prefix (system prompt, template header) prefilled once, and every
new token streamed back to its request as it is produced (a stop string ends that reply
alone). A request with a `seed` decodes alone, so its reply is reproducible. The wait list
is bounded: one request more is refused (`QueueFull`), which the app answers with 503 and
Retry-After.
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

from collapselab.config import DecodingBlock
from collapselab.serve.config import BatchingBlock
from collapselab.serve.pool import ModelPool, Served
from collapselab.serve.stops import cut_at_stop, held_back

log = logging.getLogger("collapselab.serve")


class QueueFull(Exception):
    """The wait list is at its bound; `retry_after` is a guess at when it drains (seconds)."""

    def __init__(self, retry_after: int):
        super().__init__(f"queue full; retry after {retry_after} s")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Sampling:
    """One request's decoding settings; temperature 0 is greedy. `logprobs`: None, or each
    reply token's log-probability with the k most likely tokens'."""

    temperature: float
    top_p: float
    top_k: int
    max_new_tokens: int
    seed: int | None = None
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logprobs: int | None = None

    def prompt_sampling(self) -> Any:
        """This request's setting for `generate` (`collapselab.generation.PromptSampling`)."""
        from collapselab.generation import PromptSampling

        common = {"max_new_tokens": self.max_new_tokens, "presence_penalty": self.presence_penalty,
                  "frequency_penalty": self.frequency_penalty, "logprobs": self.logprobs}
        if self.temperature == 0:
            return PromptSampling(method="greedy", **common)
        return PromptSampling(method="sample", temperature=self.temperature, top_p=self.top_p, top_k=self.top_k, **common)

    def batch_key(self) -> tuple[Any, ...]:
        # Settings are per prompt in `generate`, so any requests batch together; a seeded
        # request decodes alone, so the same seed always gives the same reply.
        return () if self.seed is None else ("seeded", id(self))


@dataclass(slots=True)
class Delta:
    text: str  # new reply text since the last Delta
    logprobs: list[TokenLogprob] | None = None  # the tokens that text completed, when the request asked


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One reply token: its id, log-probability under the model, and the most likely tokens'."""

    token: int
    logprob: float
    top: list[tuple[int, float]]


@dataclass(slots=True)
class Done:
    text: str  # the whole reply
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    served: Served
    batch_size: int
    logprobs: list[TokenLogprob] | None = None  # the reply's tokens (those inside `text`), when asked


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

    def submit(self, *jobs: Job) -> None:
        """Add `jobs` (one request's: all or none) to the wait list, or raise QueueFull when
        they do not fit under its bound."""
        with self._cond:
            if self._stopping:
                raise QueueFull(5)
            if len(self._pending) + len(jobs) > self.cfg.max_queue:
                batches_ahead = len(self._pending) / self.cfg.max_batch + 1
                raise QueueFull(max(1, round(batches_ahead * self._batch_seconds)))
            self._pending.extend(jobs)
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
        from collapselab.generation import generate

        served = self.pool.get(batch[0].model_id)  # held by this batch even if a reload swaps it
        tok = served.tokenizer
        settings = [j.sampling.prompt_sampling() for j in batch]
        streams = [_Stream(job, tok) for job in batch]

        def on_tokens(i: int, ids: list[int], finished: bool) -> bool:
            return streams[i].add(ids)  # True: a stop string ended this reply

        def on_logprobs(i: int, token: int, logprob: float, top: list[tuple[int, float]]) -> None:
            streams[i].logprobs.append(TokenLogprob(token, logprob, top))

        seed = batch[0].sampling.seed if batch[0].sampling.seed is not None else next(self._seeds)
        prompts = [j.prompt for j in batch]
        shared = _common_prefix(prompts)  # the system prompt and template header, prefilled once
        generate(
            served.model, tok, prompts, DecodingBlock(batch_tokens=self.cfg.batch_tokens, backend="transformers"),
            max_new_tokens=max(j.sampling.max_new_tokens for j in batch), seed=seed,
            prefix_lengths=[shared] * len(batch), sampling=settings, on_tokens=on_tokens, progress=False,
            on_logprobs=on_logprobs if any(j.sampling.logprobs is not None for j in batch) else None,
        )
        for s in streams:
            s.job.sink(s.done(served, len(batch)))


def _common_prefix(prompts: list[list[int]]) -> int:
    first = prompts[0]
    n = min(len(p) for p in prompts)
    for k in range(n):
        if any(p[k] != first[k] for p in prompts):
            return k
    return n


class _Stream:
    """One reply as it is decoded: its ids, the text sent so far, and where a stop string cut it."""

    def __init__(self, job: Job, tokenizer: Any):
        self.job, self.tok = job, tokenizer
        self.ids: list[int] = []
        self.text = ""
        self.stopped = False
        self.logprobs: list[TokenLogprob] = []  # one per id, when the request asked
        self.ends: list[int] = []  # per id, the length of the reply's text once it was decoded
        self.released = 0  # tokens whose logprobs went out with a Delta

    def add(self, ids: list[int]) -> bool:
        if not ids:
            return False
        self.ids.extend(ids)
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        self.ends += [len(text)] * len(ids)
        cut, self.stopped = cut_at_stop(text, self.job.stops)
        # Text that may begin a stop string or is half a character waits for the next tokens.
        ready = cut if self.stopped else cut[: len(cut) - held_back(cut, self.job.stops)]
        if len(ready) > len(self.text) and not self.job.cancelled:
            new, self.text = ready[len(self.text) :], ready
            self.job.sink(Delta(new, self._release(len(ready))))
        return self.stopped or self.job.cancelled  # a dropped client's reply stops too

    def _release(self, upto: int, kept: list[TokenLogprob] | None = None) -> list[TokenLogprob] | None:
        """The logprobs not sent yet of the tokens whose text ends within the first `upto`
        characters (`kept`: of all those left, at the end); None when not asked."""
        if self.job.sampling.logprobs is None:
            return None
        if kept is not None:
            out, self.released = kept[self.released :], max(self.released, len(kept))
            return out
        start = self.released
        while self.released < len(self.logprobs) and self.ends[self.released] <= upto:
            self.released += 1
        return self.logprobs[start : self.released]

    def done(self, served: Served, batch_size: int) -> Done:
        text = self.tok.decode(self.ids, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, self.job.stops)
        text = text.rstrip("\ufffd")  # a reply cut inside a multi-byte character
        logprobs = self._kept_logprobs(text, stopped) if self.job.sampling.logprobs is not None else None
        rest = self._release(len(text), logprobs)
        if len(text) > len(self.text) or rest:
            self.job.sink(Delta(text[len(self.text) :], rest))
        n_tokens = len(self.tok(text, add_special_tokens=False)["input_ids"]) if stopped else len(self.ids)
        finished = stopped or len(self.ids) < self.job.sampling.max_new_tokens
        return Done(text, len(self.job.prompt), n_tokens, "stop" if finished else "length", served, batch_size, logprobs)

    def _kept_logprobs(self, text: str, stopped: bool) -> list[TokenLogprob]:
        """The logprobs of the tokens inside the reply: a stop string cuts the tokens after it
        (and the one it began in) off, as it cut their text."""
        if not stopped:
            return self.logprobs
        kept = 0
        while kept < len(self.ids) and len(self.tok.decode(self.ids[: kept + 1], skip_special_tokens=True)) <= len(text):
            kept += 1
        return self.logprobs[:kept]
