"""The chat server under a short, bounded load (tests/serve_load.py): every answer is a reply
or one of the promised refusals, memory stops growing, and the server still answers after.
The long version, against `collapselab serve` in its own process: benchmarks/bench_serve_load.py."""

from __future__ import annotations

import os

import httpx
from serve_load import run_load, server_in_thread

from .conftest import config

CLIENTS, SECONDS, BODY_LIMIT = 12, 4.0, 4096


def test_a_loaded_server_refuses_cleanly_keeps_its_memory_and_answers_after(chat_model_dir):
    cfg = config(source={"model": str(chat_model_dir)}, batching={"max_queue": 4, "max_batch": 4, "wait_ms": 5},
                 security={"max_body_bytes": BODY_LIMIT}, sampling={"max_new_tokens": 8, "max_new_tokens_limit": 64})
    with server_in_thread(cfg) as url:
        # the server runs in this process: its memory is this process's (the clients' is bounded too)
        report = run_load(url, os.getpid(), clients=CLIENTS, seconds=SECONDS, max_body_bytes=BODY_LIMIT)
        assert report.errors == [], report.errors[:5]
        statuses = {status for _, status in report.statuses}
        assert {200, 400, 413} <= statuses and statuses <= {200, 400, 413, 429, 503}, report.statuses
        assert report.statuses["greedy", 503] + report.statuses["sampled", 503] > 0, "12 clients on a queue of 4: some are refused"
        # memory stops growing: the second half's peak is within a few MB of the first half's
        assert report.growth_mb() < 40, report.summary()
        # and it still answers, as before the load
        with httpx.Client(base_url=url, timeout=60) as http:
            assert http.get("/health").json()["queue"] == 0
            r = http.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0})
            assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] in ("stop", "length")
