"""Delivery that never blocks a run: one background thread per destination, retries, and a
bounded wait at the end that says what was not delivered.

Trackers, the hub pusher and notifiers hand their work to an `Outbox` from the engine's
thread (`put` returns at once). The outbox's thread runs each job in order, retrying a job
that raises, with a growing pause, `retries` times; a job that still fails is kept as
undelivered with its error. `close(wait_s)` waits at most `wait_s` for the queue to empty
and returns every job that was not delivered (failed, or still queued at the deadline).
The thread is a daemon: a destination that hangs never keeps the process alive.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

_STOP = object()


@dataclass(frozen=True, slots=True)
class Undelivered:
    what: str  # the job, in words: "upload ratio/seed-0/gen-1"
    error: str  # one line: the last error, or "not sent within 30 s"


class Outbox:
    """A queue of jobs for one destination, run in order by one background thread.

    Args:
        name: the destination, in words ("hub", "telegram"); names the thread.
        retries: extra attempts of a failed job.
        backoff_s: the pause before the first retry; it doubles each retry.
    """

    def __init__(self, name: str, *, retries: int = 3, backoff_s: float = 1.0) -> None:
        self.name, self.retries, self.backoff_s = name, retries, backoff_s
        self.delivered: list[str] = []
        self.failed: list[Undelivered] = []
        self._jobs: queue.Queue = queue.Queue()
        self._lock = threading.Condition()
        self._pending: list[str] = []  # what is queued or running, in order
        self._thread = threading.Thread(target=self._work, name=f"collapselab-{name}", daemon=True)
        self._thread.start()

    def put(self, what: str, job: Callable[[], None]) -> None:
        """Queue `job` (described by `what`); returns at once."""
        with self._lock:
            self._pending.append(what)
        self._jobs.put((what, job))

    def close(self, wait_s: float) -> list[Undelivered]:
        """Wait at most `wait_s` for queued jobs, stop the thread, and return what was not
        delivered: jobs that failed after their retries, then jobs still queued.

        A running job may queue more (the hub's listing queues the uploads it finds missing):
        the wait is for the queue to be empty, not for the jobs queued before `close`."""
        with self._lock:
            self._lock.wait_for(lambda: not self._pending, timeout=wait_s)
        self._jobs.put(_STOP)
        self._thread.join(0.1)
        with self._lock:
            late = [Undelivered(w, f"not sent within {wait_s:g} s") for w in self._pending]
            self._pending.clear()
        return self.failed + late

    def _work(self) -> None:
        while (item := self._jobs.get()) is not _STOP:
            what, job = item
            error = ""
            for attempt in range(self.retries + 1):
                if attempt:
                    time.sleep(self.backoff_s * 2 ** (attempt - 1))
                try:
                    job()
                except Exception as e:  # a destination fails in many ways; each is reported, none stops the run
                    text = str(e).strip().splitlines()
                    error = f"{type(e).__name__}: {text[0]}" if text else type(e).__name__
                else:
                    error = ""
                    break
            with self._lock:
                if what in self._pending:
                    self._pending.remove(what)
                if error:
                    self.failed.append(Undelivered(what, error))
                else:
                    self.delivered.append(what)
                self._lock.notify_all()
