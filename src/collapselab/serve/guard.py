"""The server's front door, one ASGI middleware: body limit (413), API keys (401), a
per-key rate limit (429 with Retry-After), and the per-route request counters.

The body is read here, up to the limit, before any route sees it, so a client that sends
a huge body without a Content-Length is cut off at the limit too. `/health`, the page and
its static files are open; everything else needs a key once keys are configured.
"""

from __future__ import annotations

import hmac
import json
import math
import os
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from collapselab.errors import CollapselabError
from collapselab.serve.config import SecurityBlock
from collapselab.serve.schemas import error_body
from collapselab.serve.telemetry import Telemetry

OPEN_PATHS = {"/", "/health", "/favicon.ico"}
ROUTES = {"/", "/health", "/metrics", "/chat", "/v1/models", "/v1/chat/completions", "/v1/completions"}


def load_api_keys(security: SecurityBlock) -> set[str]:
    """Keys from `api_keys_file` (one a line, # comments) and `api_keys_env` (comma-separated)."""
    keys: set[str] = set()
    if security.api_keys_file:
        path = Path(security.api_keys_file)
        if not path.is_file():
            raise CollapselabError(f"security.api_keys_file: {path} does not exist")
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                keys.add(line)
    if security.api_keys_env:
        value = os.environ.get(security.api_keys_env)
        if value is None:
            raise CollapselabError(f"security.api_keys_env: ${security.api_keys_env} is not set")
        keys |= {k.strip() for k in value.split(",") if k.strip()}
    if (security.api_keys_file or security.api_keys_env) and not keys:
        raise CollapselabError("security: api_keys_file / api_keys_env hold no key; every request would be refused")
    return keys


class RateLimiter:
    """At most `per_minute` requests per client in any 60 seconds (a sliding window: the
    `per_minute + 1`-th request within a minute of the first is refused, whatever their
    timing), and with `burst`, at most `burst` at once (a bucket of `burst` requests that
    refills at the per-minute rate).

    A rate below one a minute, or not whole, becomes a window of its own length: 0.5 a minute
    is 1 request per 120 s, 2.5 a minute is 2 per 48 s.
    """

    def __init__(self, per_minute: float, burst: int | None = None):
        self.count = max(1, math.floor(per_minute))
        self.window = 60.0 * self.count / per_minute  # seconds in which `count` requests may come
        self.rate, self.burst = per_minute / 60.0, burst
        self._times: dict[str, deque[float]] = {}  # client -> when its requests in the window came
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when counted)
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """0 when the request may go (it is counted); else the seconds until one may."""
        now = time.monotonic()
        with self._lock:
            times = self._times.setdefault(client, deque())
            while times and now - times[0] >= self.window:
                times.popleft()
            wait = times[0] + self.window - now if len(times) >= self.count else 0.0
            if self.burst is not None:
                tokens, last = self._buckets.get(client, (float(self.burst), now))
                tokens = min(float(self.burst), tokens + (now - last) * self.rate)
                self._buckets[client] = (tokens, now)
                wait = max(wait, (1 - tokens) / self.rate if tokens < 1 else 0.0)
            if wait > 0:
                return wait
            times.append(now)
            if self.burst is not None:
                self._buckets[client] = (self._buckets[client][0] - 1, now)
            return 0.0


async def _send_json(send: Any, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    raw = json.dumps(body).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]
    hdrs += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": raw})


class Guard:
    """ASGI middleware: limits and keys in front, request metrics around every response."""

    def __init__(self, app: Any, security: SecurityBlock, telemetry: Telemetry, keys: set[str]):
        self.app, self.security, self.telemetry, self.keys = app, security, telemetry, keys
        self.limiter = RateLimiter(security.rate_per_minute, security.rate_burst) if security.rate_per_minute else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]
        route = path if path in ROUTES else ("/static" if path.startswith("/static/") else "other")
        status = {"code": 500}

        async def send_counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.telemetry.request(route, status["code"], time.perf_counter() - started)

        refusal = await self._refuse(scope, path)
        if refusal is not None:
            await _send_json(send_counted, *refusal)
            return
        body = await self._read_body(scope, receive)
        if body is None:
            limit = self.security.max_body_bytes
            await _send_json(send_counted, 413, error_body(f"request body is larger than {limit} bytes", param=None, code="request_too_large"))
            return
        await self.app(scope, _replay(body, receive), send_counted)

    async def _refuse(self, scope: dict[str, Any], path: str) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.security.max_body_bytes:
            return 413, error_body(f"request body is larger than {self.security.max_body_bytes} bytes", code="request_too_large"), {}
        if path in OPEN_PATHS or path.startswith("/static/") or scope["method"] == "OPTIONS":
            return None
        client = (scope.get("client") or ("unknown", 0))[0]
        if self.keys:
            auth = headers.get("authorization", "")
            key = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            if not key or not any(hmac.compare_digest(key, k) for k in self.keys):
                why = "no API key given (Authorization: Bearer <key>)" if not key else "invalid API key"
                return 401, error_body(why, type_="authentication_error", code="invalid_api_key"), {"WWW-Authenticate": "Bearer"}
            client = "key:" + key
        if self.limiter is not None:
            wait = self.limiter.take(client)
            if wait > 0:
                return 429, error_body(f"rate limit of {self.security.rate_per_minute:g} requests per minute reached", type_="rate_limit_error", code="rate_limit_exceeded"), {"Retry-After": str(max(1, math.ceil(wait)))}
        return None

    async def _read_body(self, scope: dict[str, Any], receive: Any) -> bytes | None:
        """The whole body, or None once it passes the limit."""
        if scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return b""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.security.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the client's disconnect

    return replay
