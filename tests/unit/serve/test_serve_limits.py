"""The promised refusals, each in the OpenAI error shape: 401, 413, 422/400, 429, 503; CORS
off by default; concurrent requests decoded in one batch."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .conftest import config

HELLO = {"message": "hello there", "temperature": 0, "max_length": 6}


def _error(r, status: int) -> dict:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code"}
    return err


@pytest.fixture
def model(chat_model_dir):
    return str(chat_model_dir)


def test_api_keys_from_file_and_env(client_for, model, tmp_path, monkeypatch):
    keys = tmp_path / "keys.txt"
    keys.write_text("# lab keys\nkey-from-file\n")
    monkeypatch.setenv("LAB_KEYS", "key-a, key-b")
    c = client_for(config(source={"model": model}, security={"api_keys_file": str(keys), "api_keys_env": "LAB_KEYS"}))
    err = _error(c.post("/chat", json=HELLO), 401)
    assert err["code"] == "invalid_api_key" and err["type"] == "authentication_error"
    _error(c.post("/chat", json=HELLO, headers={"Authorization": "Bearer wrong"}), 401)
    _error(c.get("/v1/models"), 401)
    _error(c.get("/metrics"), 401)
    for key in ("key-from-file", "key-b"):
        assert c.post("/chat", json=HELLO, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert c.get("/health").status_code == 200 and c.get("/").status_code == 200  # open


def test_body_limit_is_413(client_for, model):
    c = client_for(config(source={"model": model}, security={"max_body_bytes": 1024}))
    err = _error(c.post("/chat", json={**HELLO, "message": "x" * 2000}), 413)
    assert err["code"] == "request_too_large"

    def chunked():  # no Content-Length: the limit holds on the bytes read
        for _ in range(10):
            yield b"x" * 200

    _error(c.post("/chat", content=chunked(), headers={"Content-Type": "application/json"}), 413)
    assert c.post("/chat", json=HELLO).status_code == 200


@pytest.mark.parametrize("route", ["/chat", "/v1/chat/completions", "/v1/completions"])
def test_a_malformed_body_is_400(client, route):
    for raw in (b'{"messages": [', b"\xff\xfe", b"not json at all"):
        err = _error(client.post(route, content=raw, headers={"Content-Type": "application/json"}), 400)
        assert err["code"] == "invalid_json" and err["message"].startswith("body: not valid JSON")
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("route", "body", "param"),
    [
        ("/chat", {"message": "hi", "temperature": 2.5}, "temperature"),
        ("/chat", {"message": "hi", "top_p": 0}, "top_p"),
        ("/chat", {"message": "hi", "top_k": -1}, "top_k"),
        ("/chat", {"message": ""}, "message"),
        ("/chat", {"temperature": 1}, "message"),
        ("/chat", {"message": "hi", "history": [{"role": "robot", "content": "x"}]}, "history.0.role"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, "max_tokens"),
        ("/v1/completions", {"prompt": "hi", "temperature": -1}, "temperature"),
    ],
)
def test_invalid_parameters_are_422_naming_the_field(client, route, body, param):
    err = _error(client.post(route, json=body), 422)
    assert err["param"] == param and param.split(".")[0] in err["message"]


def test_limits_from_config_and_model_are_400_naming_the_field(client_for, model):
    c = client_for(config(source={"model": model}, security={"max_prompt_tokens": 20}, sampling={"max_new_tokens": 8, "max_new_tokens_limit": 32}))
    err = _error(c.post("/chat", json={"message": "hello there " * 20}), 400)
    assert err["param"] == "message" and err["code"] == "context_length_exceeded"
    err = _error(c.post("/chat", json={"message": "hi", "history": [{"role": "user", "content": "the cat sat " * 20}]}), 400)
    assert err["param"] == "history"
    err = _error(c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 33}), 400)
    assert err["param"] == "max_tokens"
    err = _error(c.post("/v1/completions", json={"prompt": ["hi"] * 5, "n": 16}), 400)  # 80 choices, a queue of 64
    assert err["param"] == "n" and "queue of 64" in err["message"]
    # prompt + reply beyond the model's 256 positions
    c2 = client_for(config(source={"model": model}, sampling={"max_new_tokens_limit": 1000}))
    err = _error(c2.post("/v1/completions", json={"prompt": "the cat", "max_tokens": 300}), 400)
    assert err["param"] == "prompt" and "positions" in err["message"]


def test_rate_limit_is_429_with_retry_after_per_key(client_for, model, monkeypatch):
    monkeypatch.setenv("LAB_KEYS", "alice,bob")
    c = client_for(config(source={"model": model}, security={"api_keys_env": "LAB_KEYS", "rate_per_minute": 2, "rate_burst": 2}))
    alice, bob = ({"Authorization": f"Bearer {k}"} for k in ("alice", "bob"))
    assert [c.post("/chat", json=HELLO, headers=alice).status_code for _ in range(2)] == [200, 200]
    r = c.post("/chat", json=HELLO, headers=alice)
    assert _error(r, 429)["code"] == "rate_limit_exceeded"
    assert 55 <= int(r.headers["Retry-After"]) <= 60  # 2 a minute: the next once the first is a minute old
    assert c.post("/chat", json=HELLO, headers=bob).status_code == 200  # bob has his own bucket


def test_full_queue_is_503_with_retry_after_and_nothing_is_lost(client_for, model):
    c = client_for(config(source={"model": model}, batching={"max_queue": 1, "max_batch": 1, "wait_ms": 0}))
    scheduler = c.app.state.service.scheduler
    release, started = threading.Event(), threading.Event()
    real = scheduler._decode

    def held(batch):  # the first batch waits until the test has filled the queue
        started.set()
        release.wait(30)
        real(batch)

    scheduler._decode = held
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(c.post, "/chat", json=HELLO)
        assert started.wait(30)
        second = pool.submit(c.post, "/chat", json=HELLO)
        while scheduler.queue_length() < 1:  # the second request waits in the queue
            threading.Event().wait(0.01)
        r = c.post("/chat", json=HELLO)
        err = _error(r, 503)
        assert err["code"] == "server_overloaded" and int(r.headers["Retry-After"]) >= 1
        release.set()
        assert first.result().status_code == 200 and second.result().status_code == 200


def test_requests_arriving_together_decode_in_one_batch(client_for, model):
    c = client_for(config(source={"model": model}, batching={"wait_ms": 300, "max_batch": 8}))
    prompts = ["hello there", "the cat sat on the mat", "how are you today?", "a model trained"]
    lengths = [6, 3, 6, 3]  # different reply lengths (and below, sampling settings) share a batch

    def ask(p: str, n: int, **extra) -> dict:
        body = {"messages": [{"role": "user", "content": p}], "temperature": 0, "max_tokens": n, **extra}
        return c.post("/v1/chat/completions", json=body).json()

    alone = [ask(p, n)["choices"][0]["message"]["content"] for p, n in zip(prompts, lengths, strict=True)]
    with ThreadPoolExecutor(6) as pool:
        greedy = [pool.submit(ask, p, n) for p, n in zip(prompts, lengths, strict=True)]
        sampled = [pool.submit(ask, "hello there", 5, temperature=1.3, top_k=5, top_p=0.9) for _ in range(2)]
        together = [f.result() for f in greedy]
        others = [f.result() for f in sampled]
    assert max(t["collapselab"]["batch_size"] for t in together + others) == 6
    # decoded together, each greedy reply is what it was alone, cut at its own length
    assert [t["choices"][0]["message"]["content"] for t in together] == alone
    assert all(t["usage"]["completion_tokens"] <= n for t, n in zip(together, lengths, strict=True))
    assert all(o["usage"]["completion_tokens"] <= 5 for o in others)
    assert "collapselab_batch_size_bucket{le=\"8\"}" in c.get("/metrics").text


def test_cors_is_off_by_default_and_on_by_config(client_for, model):
    origin = {"Origin": "http://example.test"}
    c = client_for(config(source={"model": model}))
    assert "access-control-allow-origin" not in c.get("/v1/models", headers=origin).headers
    c2 = client_for(config(source={"model": model}, security={"cors_origins": ["http://example.test"]}))
    assert c2.get("/v1/models", headers=origin).headers["access-control-allow-origin"] == "http://example.test"


@pytest.fixture
def client(client_for, model):
    return client_for(config(source={"model": model}))


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("per_minute", [1, 5, 60])
def test_the_rate_limit_lets_through_exactly_the_configured_count_in_any_minute(per_minute, monkeypatch):
    from collapselab.serve import guard

    clock = _Clock()
    monkeypatch.setattr(guard.time, "monotonic", clock)
    limiter = guard.RateLimiter(per_minute)
    passed = 0
    while limiter.take("alice") == 0:  # a client hammering the server
        passed += 1
        assert passed <= per_minute
    assert passed == per_minute and limiter.take("bob") == 0  # each client counts alone
    clock.now += 59.9
    assert limiter.take("alice") > 0  # the first request is not yet a minute old
    clock.now += 0.1  # they are a minute old: the minute's count again, no more
    assert [limiter.take("alice") == 0 for _ in range(per_minute + 1)] == [True] * per_minute + [False]


def test_spread_requests_stay_within_the_count_and_a_burst_caps_them_at_once(monkeypatch):
    from collapselab.serve import guard

    clock = _Clock()
    monkeypatch.setattr(guard.time, "monotonic", clock)
    limiter = guard.RateLimiter(5)
    times = []
    for _ in range(200):  # a request every 3 s for 10 minutes
        if limiter.take("alice") == 0:
            times.append(clock.now)
        clock.now += 3.0
    assert all(sum(t <= u < t + 60 for u in times) <= 5 for t in times) and len(times) == 50
    burst = guard.RateLimiter(60, burst=3)
    assert [burst.take("a") == 0 for _ in range(5)] == [True, True, True, False, False]
    clock.now += 1.0  # one request refilled at 60 a minute
    assert [burst.take("a") == 0 for _ in range(2)] == [True, False]
    assert guard.RateLimiter(0.5).window == 120.0  # half a request a minute: one per 2 minutes
