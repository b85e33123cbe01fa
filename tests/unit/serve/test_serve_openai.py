"""The `openai` client against the server: every parameter honoured (logprobs, n, the
penalties) or refused with 400 naming it, never silently dropped."""

from __future__ import annotations

import math

import openai
import pytest

from collapselab.config import DecodingBlock
from collapselab.generation import generate
from collapselab.models.loading import load_model
from collapselab.models.prompts import chat_prompt

from .conftest import config

HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def client(client_for, chat_model_dir):
    test_client = client_for(config(source={"model": str(chat_model_dir)}))
    # TestClient is an httpx.Client: the openai package talks to the app in process
    return openai.OpenAI(base_url="http://testserver/v1", api_key="unused", http_client=test_client, max_retries=0)


def test_chat_logprobs_are_the_model_own(client, chat_model_dir):
    reply = client.chat.completions.create(model=str(chat_model_dir), messages=HELLO, temperature=0, max_tokens=6,
                                           logprobs=True, top_logprobs=3)
    choice = reply.choices[0]
    content = choice.logprobs.content
    # one entry per reply token: their bytes join into the reply (a tiny random model writes broken UTF-8 too)
    joined = b"".join(bytes(t.bytes) for t in content)
    assert joined.decode("utf-8", errors="replace").rstrip("\ufffd") == choice.message.content
    assert all(len(t.top_logprobs) == 3 and t.top_logprobs[0].token == t.token for t in content)  # greedy: the top one
    assert all(t.token == bytes(t.bytes).decode("utf-8", errors="backslashreplace") and t.logprob <= 0 for t in content)
    # the first token's log-probability, from a plain forward pass of the same prompt
    import torch

    loaded = load_model(chat_model_dir, for_training=False)
    ids = chat_prompt(loaded.tokenizer, HELLO)
    (expected,) = generate(loaded.model, loaded.tokenizer, [ids], DecodingBlock(method="greedy"), max_new_tokens=6, seed=0, progress=False)
    with torch.no_grad():
        first = loaded.model(torch.tensor([ids])).logits[0, -1].float().log_softmax(-1)
    assert content[0].logprob == pytest.approx(float(first[expected[0]]), abs=1e-4)


def test_n_choices_differ_and_a_seed_reproduces_them(client, chat_model_dir):
    ask = {"model": str(chat_model_dir), "messages": HELLO, "temperature": 1.5, "max_tokens": 8, "n": 4}
    first = client.chat.completions.create(**ask, seed=7)
    again = client.chat.completions.create(**ask, seed=7)
    texts = [c.message.content for c in first.choices]
    assert [c.index for c in first.choices] == [0, 1, 2, 3]
    assert len(set(texts)) > 1  # four samples, not one answer four times
    assert [c.message.content for c in again.choices] == texts
    alone = client.chat.completions.create(**{**ask, "n": 1}, seed=7)  # choice 0 is the seeded request's own reply
    assert alone.choices[0].message.content == texts[0]
    assert first.usage.prompt_tokens == alone.usage.prompt_tokens  # the prompt counts once
    assert first.usage.completion_tokens > alone.usage.completion_tokens  # every choice's reply counts


def test_completions_logprobs_and_n(client, chat_model_dir):
    reply = client.completions.create(model=str(chat_model_dir), prompt=["the cat sat", "a model"], temperature=0, max_tokens=5,
                                      n=2, logprobs=2)
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    assert reply.choices[0].text == reply.choices[1].text  # greedy: every choice the same
    for c in reply.choices:
        lp = c.logprobs
        assert len(lp.token_logprobs) == len(lp.tokens) == len(lp.top_logprobs) == len(lp.text_offset) > 0
        assert all(len(top) <= 2 and max(top.values()) == pytest.approx(v, abs=1e-5) for top, v in zip(lp.top_logprobs, lp.token_logprobs, strict=True))
        start = len("the cat sat") if c.index < 2 else len("a model")
        assert lp.text_offset[0] == start and all(math.isfinite(v) for v in lp.token_logprobs)


def test_penalties_change_a_greedy_reply(client, chat_model_dir):
    ask = {"model": str(chat_model_dir), "messages": HELLO, "temperature": 0, "max_tokens": 24}
    plain = client.chat.completions.create(**ask).choices[0].message.content
    free = client.chat.completions.create(**ask, presence_penalty=0.0, frequency_penalty=0.0).choices[0].message.content
    penalized = client.chat.completions.create(**ask, presence_penalty=2.0, frequency_penalty=2.0).choices[0].message.content
    assert free == plain and penalized != plain


@pytest.mark.parametrize(
    ("route", "extra", "param"),
    [
        ("chat", {"response_format": {"type": "json_object"}}, "response_format"),
        ("chat", {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, "tools"),
        ("chat", {"logit_bias": {"5": 10}}, "logit_bias"),
        ("chat", {"user": "someone"}, "user"),
        ("chat", {"top_logprobs": 2}, "top_logprobs"),  # without logprobs
        ("completions", {"echo": True}, "echo"),
        ("completions", {"best_of": 3}, "best_of"),
        ("completions", {"suffix": "!"}, "suffix"),
    ],
)
def test_an_unsupported_parameter_is_a_400_naming_it(client, chat_model_dir, route, extra, param):
    with pytest.raises(openai.BadRequestError) as raised:
        if route == "chat":
            client.chat.completions.create(model=str(chat_model_dir), messages=HELLO, max_tokens=2, **extra)
        else:
            client.completions.create(model=str(chat_model_dir), prompt="hi", max_tokens=2, **extra)
    err = raised.value.body
    assert raised.value.status_code == 400 and err["param"] == param and err["message"].startswith(f"{param}: "), err


def test_a_message_field_the_server_does_not_read_is_refused(client, chat_model_dir):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model=str(chat_model_dir), max_tokens=2,
                                       messages=[{"role": "user", "content": "hi", "name": "alice"}])
    assert raised.value.body["param"] == "messages.0.name"


def test_a_null_parameter_is_one_not_given(client_for, chat_model_dir):
    c = client_for(config(source={"model": str(chat_model_dir)}))
    r = c.post("/v1/chat/completions", json={"messages": HELLO, "max_tokens": 2, "tools": None, "logprobs": None, "user": None})
    assert r.status_code == 200, r.text


def test_a_stream_carries_every_choice_and_its_logprobs(client, chat_model_dir):
    ask = {"model": str(chat_model_dir), "messages": HELLO, "temperature": 0, "max_tokens": 10, "logprobs": True, "top_logprobs": 2}
    whole = client.chat.completions.create(**ask, n=2)
    texts, logprobs = {0: "", 1: ""}, {0: [], 1: []}
    for chunk in client.chat.completions.create(**ask, n=2, stream=True, stream_options={"include_usage": True}):
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
            logprobs[c.index] += c.logprobs.content if c.logprobs is not None else []
        if chunk.usage is not None:
            assert chunk.usage == whole.usage
    for k in (0, 1):  # greedy: each choice streams what the whole answer holds, token for token
        assert texts[k] == whole.choices[k].message.content
        assert [(t.token, t.logprob) for t in logprobs[k]] == [(t.token, t.logprob) for t in whole.choices[k].logprobs.content]


def test_a_completion_stream_carries_logprobs_with_their_offsets(client, chat_model_dir):
    ask = {"model": str(chat_model_dir), "prompt": "the cat sat", "temperature": 0, "max_tokens": 8, "logprobs": 1}
    whole = client.completions.create(**ask).choices[0].logprobs
    tokens, offsets = [], []
    for chunk in client.completions.create(**ask, stream=True):
        for c in chunk.choices:
            if c.logprobs is not None:
                tokens += c.logprobs.tokens
                offsets += c.logprobs.text_offset
    assert tokens == whole.tokens and offsets == whole.text_offset
