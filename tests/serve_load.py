"""A bounded load on a real chat server on loopback (uvicorn, real sockets): a fixed number
of clients sending requests for a fixed time, the server's memory sampled as they do. The
suite runs it for a few seconds on a server in a thread of its own process
(tests/unit/serve/test_serve_load.py: `server_in_thread`), the benchmark for as long as it is
told against `collapselab serve` in its own process (benchmarks/bench_serve_load.py:
`start_server`).

Every client sends, in turn: chat completions (greedy and sampled, some with n=2 and
logprobs), a body over the server's limit (must be 413) and a body that is not JSON (must
be 400). A completion may also be refused for load (503 from the full queue, 429 from a rate
limit), always with Retry-After. Anything else is an error: another status, a refusal
without Retry-After, a connection that fails.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

KINDS = ("greedy", "sampled", "choices", "oversized", "greedy", "malformed", "sampled")
EXPECTED = {"oversized": {413}, "malformed": {400}}  # the rest: 200, or 503 / 429 with Retry-After
LOAD_REFUSALS = {429, 503}


@dataclass
class LoadReport:
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)  # (kind, status) -> count
    errors: list[str] = field(default_factory=list)  # what no client should ever see
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the load, server RSS)

    def growth_mb(self) -> float:
        """How much the server's peak memory grew from the first half of the load to the second."""
        half = self.rss_mb[-1][0] / 2
        first = max(m for t, m in self.rss_mb if t <= half)
        second = max(m for t, m in self.rss_mb if t > half)
        return second - first

    def summary(self) -> dict:
        by_status = Counter()
        for (_, status), n in self.statuses.items():
            by_status[status] += n
        return {"requests": self.requests, "statuses": dict(sorted(by_status.items())), "errors": len(self.errors),
                "rss_mb_first": self.rss_mb[0][1], "rss_mb_last": self.rss_mb[-1][1], "growth_mb": round(self.growth_mb(), 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, folder: Path, *, max_queue: int = 4, max_batch: int = 4, max_body_bytes: int = 4096,
                 max_new_tokens_limit: int = 64) -> tuple[subprocess.Popen, str]:
    """`collapselab serve` of `model` on a free loopback port; returns the process and its URL
    once /health answers."""
    port = free_port()
    config = folder / "serve.yaml"
    config.write_text(yaml.safe_dump({
        "host": "127.0.0.1", "port": port, "source": {"model": str(model)}, "log_level": "warning",
        "batching": {"max_queue": max_queue, "max_batch": max_batch, "wait_ms": 5},
        "security": {"max_body_bytes": max_body_bytes},
        "sampling": {"max_new_tokens": 8, "max_new_tokens_limit": max_new_tokens_limit},
    }))
    log = folder / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "collapselab.cli", "serve", "--config", str(config)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server not healthy after 180 s:\n{log.read_text()[-3000:]}")


@contextmanager
def server_in_thread(cfg: Any) -> Iterator[str]:
    """The app of a `ServeConfig` served by uvicorn on a free loopback port in a thread of
    this process (no second start-up of torch and transformers); yields its URL."""
    import uvicorn

    from collapselab.serve import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(cfg), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="serve-load-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(60)


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _request(kind: str, i: int, max_body_bytes: int) -> tuple[str, bytes]:
    """(route, body) of one request of `kind`."""
    chat = {"messages": [{"role": "user", "content": f"hello there, request {i}"}], "max_tokens": 8}
    if kind == "greedy":
        return "/v1/chat/completions", json.dumps({**chat, "temperature": 0}).encode()
    if kind == "sampled":
        return "/v1/completions", json.dumps({"prompt": f"the cat sat {i}", "max_tokens": 8, "temperature": 1.0, "top_p": 0.9}).encode()
    if kind == "choices":
        return "/v1/chat/completions", json.dumps({**chat, "n": 2, "logprobs": True, "top_logprobs": 2, "temperature": 0.8}).encode()
    if kind == "oversized":
        return "/v1/chat/completions", json.dumps({**chat, "messages": [{"role": "user", "content": "x" * max_body_bytes}]}).encode()
    return "/v1/chat/completions", b'{"messages": [{"role": "user", "content": '  # malformed


def run_load(url: str, pid: int, *, clients: int, seconds: float, max_body_bytes: int, sample_every: float = 0.2) -> LoadReport:
    """`clients` threads send requests to `url` for `seconds`; the server's (`pid`) memory is
    sampled every `sample_every` seconds meanwhile."""
    report = LoadReport()
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def client(c: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = c
            while time.monotonic() < deadline:
                kind = KINDS[i % len(KINDS)]
                route, body = _request(kind, i, max_body_bytes)
                i += clients
                try:
                    r = http.post(route, content=body, headers={"Content-Type": "application/json"})
                except httpx.HTTPError as e:
                    with lock:
                        report.errors.append(f"{kind}: {type(e).__name__}: {e}")
                    continue
                problem = _judge(kind, r)
                with lock:
                    report.requests += 1
                    report.statuses[kind, r.status_code] += 1
                    if problem:
                        report.errors.append(problem)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(clients)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        report.rss_mb.append((time.monotonic() - start, rss_mb(pid)))
        time.sleep(sample_every)
    for t in threads:
        t.join()
    return report


def _judge(kind: str, r: httpx.Response) -> str | None:
    """Why this answer is wrong for a request of `kind`, or None."""
    status = r.status_code
    if kind in EXPECTED:
        return None if status in EXPECTED[kind] else f"{kind}: {status} {r.text[:200]}"
    if status in LOAD_REFUSALS:
        return None if r.headers.get("retry-after", "").isdigit() else f"{kind}: {status} without Retry-After"
    if status != 200:
        return f"{kind}: {status} {r.text[:200]}"
    return None
