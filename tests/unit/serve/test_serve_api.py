"""Every route of the chat server against a real tiny model, through FastAPI's TestClient."""

from __future__ import annotations

import json

import pytest

from collapselab.config import DecodingBlock
from collapselab.generation import generate
from collapselab.models.loading import load_model
from collapselab.models.prompts import chat_prompt

from .conftest import config

GREEDY = {"temperature": 0, "max_length": 8}


def _sse(text: str) -> list:
    """The data of every server-sent event; the last must be [DONE]."""
    events = [block[len("data: "):] for block in text.strip().split("\n\n")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


@pytest.fixture
def client(client_for, chat_model_dir):
    return client_for(config(source={"model": str(chat_model_dir)}))


def test_chat_replies_with_the_project_decode_of_the_chat_template(client, chat_model_dir):
    history = [{"role": "user", "content": "hello there"}, {"role": "assistant", "content": "i am fine"}]
    r = client.post("/chat", json={"message": "how are you today?", "history": history, **GREEDY})
    assert r.status_code == 200
    body = r.json()
    # The same prompt (template applied to history + message) decoded greedily by generate.
    loaded = load_model(chat_model_dir, for_training=False)
    ids = chat_prompt(loaded.tokenizer, [*history, {"role": "user", "content": "how are you today?"}])
    assert ids[-1] == loaded.tokenizer.convert_tokens_to_ids("<|assistant|>")
    (expected,) = generate(loaded.model, loaded.tokenizer, [ids], DecodingBlock(method="greedy"), max_new_tokens=8, seed=0, progress=False)
    assert body["reply"] == loaded.tokenizer.decode(expected, skip_special_tokens=True).rstrip("\ufffd")
    assert body["prompt_tokens"] == len(ids) and body["completion_tokens"] == len(expected)
    assert body["model"] == str(chat_model_dir) and body["generation"] is None
    assert body["seconds"] > 0 and body["finish_reason"] in ("stop", "length")


def test_openai_chat_completion_and_its_stream_agree(client):
    req = {"messages": [{"role": "user", "content": "hello there"}], "temperature": 0, "max_tokens": 16}
    whole = client.post("/v1/chat/completions", json=req).json()
    assert whole["object"] == "chat.completion"
    content = whole["choices"][0]["message"]["content"]
    assert whole["usage"]["total_tokens"] == whole["usage"]["prompt_tokens"] + whole["usage"]["completion_tokens"]
    r = client.post("/v1/chat/completions", json={**req, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    chunks = _sse(r.text)
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]]
    assert "".join(pieces) == content
    assert len([p for p in pieces if p]) >= 2  # tokens are sent as they are decoded, not at the end
    assert chunks[-2]["choices"][0]["finish_reason"] == whole["choices"][0]["finish_reason"]
    assert chunks[-1]["usage"] == whole["usage"]


def test_openai_completions_batch_prompts_and_stream(client):
    r = client.post("/v1/completions", json={"prompt": ["the cat sat", "a model trained on"], "temperature": 0, "max_tokens": 6})
    body = r.json()
    assert r.status_code == 200 and [c["index"] for c in body["choices"]] == [0, 1]
    assert body["collapselab"]["batch_size"] == 2  # two prompts of one request decode together
    one = client.post("/v1/completions", json={"prompt": "a model trained on", "temperature": 0, "max_tokens": 6}).json()
    assert one["choices"][0]["text"] == body["choices"][1]["text"]  # batching leaves greedy replies as they are
    s = client.post("/v1/completions", json={"prompt": "a model trained on", "temperature": 0, "max_tokens": 6, "stream": True})
    chunks = _sse(s.text)
    assert "".join(c["choices"][0]["text"] for c in chunks) == one["choices"][0]["text"]


def test_models_health_and_metrics(client, chat_model_dir):
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and [m["id"] for m in models["data"]] == [str(chat_model_dir)]
    assert client.get("/health").json()["status"] == "ok"
    client.post("/chat", json={"message": "hello", **GREEDY})
    text = client.get("/metrics").text
    assert 'collapselab_requests_total{route="/chat",status="200"} 1' in text
    completion = next(line for line in text.splitlines() if line.startswith('collapselab_tokens_total{kind="completion"}'))
    assert int(completion.split()[-1]) >= 1
    assert "collapselab_queue_length 0" in text and 'collapselab_request_seconds_count{route="/chat"} 1' in text


def test_unknown_model_is_404_in_openai_shape(client):
    r = client.post("/v1/chat/completions", json={"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "model_not_found" and r.json()["error"]["param"] == "model"


def test_base_model_uses_the_plain_transcript(client_for, base_model_dir):
    c = client_for(config(source={"model": str(base_model_dir)}))
    r = c.post("/chat", json={"message": "hello there", "history": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hey"}], **GREEDY})
    assert r.status_code == 200
    assert r.json()["prompt_tokens"] == len(load_model(base_model_dir, for_training=False).tokenizer("User: hi\nAssistant: hey\nUser: hello there\nAssistant:")["input_ids"])
    assert "\nUser:" not in r.json()["reply"]


def test_run_generations_are_separate_models(client_for, run_dir):
    c = client_for(config(source={"run": str(run_dir), "generation": 0}))
    ids = [m["id"] for m in c.get("/v1/models").json()["data"]]
    assert ids == ["replace/gen-0", "replace/gen-1", "replace/gen-2"]
    replies = {}
    for g in (0, 2):
        body = c.post("/chat", json={"message": "the cat sat on the mat", "generation": g, **GREEDY}).json()
        assert body["generation"] == g and body["model"] == f"replace/gen-{g}"
        replies[g] = body["reply"]
    assert replies[0] != replies[2]  # different weights answer differently
    assert c.post("/chat", json={"message": "x", "generation": 7, **GREEDY}).status_code == 404
