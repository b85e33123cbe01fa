"""What the OpenAI routes answer besides the text: usage, log-probabilities in OpenAI's two
shapes (chat's `logprobs.content`, the legacy completions' parallel lists), and the
parameters they refuse by name.

A token's text is `tokenizer.decode([token])`; a token holding part of a multi-byte
character reads as U+FFFD (its `bytes` are those of that text).
"""

from __future__ import annotations

from typing import Any

from collapselab.serve.scheduler import Done, TokenLogprob
from collapselab.serve.schemas import (
    ApiError,
    ChatCompletionRequest,
    CompletionRequest,
    unsupported,
)


def total_usage(results: list[Done], prompts: int) -> dict[str, int]:
    """One request's usage: each prompt counted once (its n choices share it), every choice's reply."""
    per_prompt = len(results) // prompts
    prompt = sum(d.prompt_tokens for d in results[::per_prompt])
    completion = sum(d.completion_tokens for d in results)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def refuse_unsupported(body: ChatCompletionRequest | CompletionRequest) -> None:
    """400 naming a parameter this server does not implement; streams of several choices or
    with logprobs are not implemented either."""
    name = unsupported(body)
    if name is not None:
        raise ApiError(400, f"{name}: not supported by this server (supported: {', '.join(type(body).model_fields)})",
                       param=name, code="unsupported_parameter")
    if body.stream and body.n > 1:
        raise ApiError(400, "n: a stream carries one choice; ask for n > 1 without stream", param="n", code="unsupported_parameter")
    if body.stream and body.logprobs not in (None, False):
        raise ApiError(400, "logprobs: not sent in streams; ask for logprobs without stream", param="logprobs", code="unsupported_parameter")


def token_text(tokenizer: Any, token: int) -> str:
    return tokenizer.decode([token], skip_special_tokens=False)


def chat_logprobs(tokenizer: Any, logprobs: list[TokenLogprob] | None) -> dict[str, Any]:
    """OpenAI's chat `logprobs`: per reply token its text, UTF-8 bytes, log-probability and the
    most likely tokens'. A token holding part of a character reads as U+FFFD."""

    def entry(token: int, logprob: float) -> dict[str, Any]:
        text = token_text(tokenizer, token)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    content = [{**entry(t.token, t.logprob), "top_logprobs": [entry(i, v) for i, v in t.top]} for t in logprobs or []]
    return {"content": content, "refusal": None}


def completion_logprobs(tokenizer: Any, logprobs: list[TokenLogprob] | None, prompt_chars: int) -> dict[str, Any]:
    """The legacy completions `logprobs`: tokens, token_logprobs, top_logprobs (token text ->
    log-probability) and text_offset (characters from the start of the prompt)."""
    tokens = [token_text(tokenizer, t.token) for t in logprobs or []]
    offsets, at = [], prompt_chars
    for text in tokens:
        offsets.append(at)
        at += len(text)
    return {"tokens": tokens, "token_logprobs": [t.logprob for t in logprobs or []],
            "top_logprobs": [{token_text(tokenizer, i): v for i, v in t.top} for t in logprobs or []], "text_offset": offsets}
