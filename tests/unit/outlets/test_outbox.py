"""The outbox never blocks its caller, retries a failing job, and says what it did not deliver."""

from __future__ import annotations

import threading
import time

from collapselab.outlets.outbox import Outbox, Undelivered
from collapselab.outlets.trackers import MAX_PARAM_CHARS, flat_params


def test_a_job_that_fails_is_retried_then_delivered():
    calls = []

    def flaky() -> None:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("endpoint down\nsecond line")

    box = Outbox("test", retries=3, backoff_s=0.01)
    box.put("flaky job", flaky)
    assert box.close(5) == [] and box.delivered == ["flaky job"] and len(calls) == 3


def test_a_job_failing_every_retry_is_reported_with_its_last_error():
    box = Outbox("test", retries=2, backoff_s=0.01)
    box.put("doomed", lambda: (_ for _ in ()).throw(ConnectionError("endpoint down\nsecond line")))
    box.put("fine", lambda: None)
    assert box.close(5) == [Undelivered("doomed", "ConnectionError: endpoint down")]
    assert box.delivered == ["fine"]


def test_jobs_a_running_job_queues_are_delivered_even_when_close_comes_first():
    # the hub's repository listing queues the uploads it finds missing: close() must not
    # stop the thread between the listing and those uploads (a race seen under load)
    started, done = threading.Event(), []
    box = Outbox("test", retries=0)

    def listing() -> None:
        started.set()
        time.sleep(0.2)  # close() is called while this runs
        box.put("upload gen-1", lambda: done.append("gen-1"))

    box.put("list", listing)
    started.wait(5)
    assert box.close(5) == [] and done == ["gen-1"] and box.delivered == ["list", "upload gen-1"]


def test_put_never_waits_and_close_waits_only_as_long_as_it_is_told():
    release = threading.Event()
    box = Outbox("test", retries=0)
    t0 = time.monotonic()
    box.put("hangs", lambda: release.wait(30))
    box.put("after it", lambda: None)
    assert time.monotonic() - t0 < 0.5  # the caller (the engine) goes on at once
    missing = box.close(0.3)
    assert 0.3 <= time.monotonic() - t0 < 5
    assert [m.what for m in missing] == ["hangs", "after it"] and all("not sent within 0.3 s" in m.error for m in missing)
    release.set()


def test_flat_params_name_every_leaf_and_respect_mlflow_limits():
    params = flat_params({"training": {"lr": 0.005, "compile": False}, "arms": [{"name": "a"}], "text": "x" * 10_000, "none": None})
    assert params["training.lr"] == "0.005" and params["training.compile"] == "false"
    assert params["arms"] == '[{"name": "a"}]' and params["none"] == "null"
    assert len(params["text"]) == MAX_PARAM_CHARS and params["text"].endswith("…")
