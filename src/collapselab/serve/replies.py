"""What the OpenAI routes answer besides the text: usage, log-probabilities in OpenAI's two
shapes (chat's `logprobs.content`, the legacy completions' parallel lists), and the
parameters they refuse by name.

A token's text is `tokenizer.decode([token])`; a token holding part of a multi-byte
character reads as U+FFFD (its `bytes` are those of that text).
"""

from __future__ import annotations

import re
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
    """400 naming a parameter this server does not implement."""
    name = unsupported(body)
    if name is not None:
        raise ApiError(400, f"{name}: not supported by this server (supported: {', '.join(type(body).model_fields)})",
                       param=name, code="unsupported_parameter")


def token_bytes(tokenizer: Any, token: int) -> bytes:
    """The bytes one token stands for: exact for byte-level BPE vocabularies (GPT-2, SmolLM2,
    Llama 3: every piece is spelled in the 256-character byte alphabet) and SentencePiece byte
    pieces (`<0xE2>`); else the UTF-8 of the token decoded alone."""
    piece = tokenizer.convert_ids_to_tokens(token)
    if piece not in tokenizer.all_special_tokens:
        if all(c in _BYTE_OF for c in piece):
            return bytes(_BYTE_OF[c] for c in piece)
        if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", piece):
            return bytes([int(piece[3:5], 16)])
    return tokenizer.decode([token], skip_special_tokens=False).encode("utf-8")


def token_text(data: bytes) -> str:
    """A token's text; bytes that are part of a character show as `\\xe2` (a token cut
    inside a character, as OpenAI shows one)."""
    return data.decode("utf-8", errors="backslashreplace")


def chat_logprobs(tokenizer: Any, logprobs: list[TokenLogprob] | None) -> dict[str, Any]:
    """OpenAI's chat `logprobs`: per reply token its text, bytes, log-probability under the
    model and the most likely tokens' (`top_logprobs`); the bytes of the content's tokens
    join into the reply."""

    def entry(token: int, logprob: float) -> dict[str, Any]:
        data = token_bytes(tokenizer, token)
        return {"token": token_text(data), "logprob": logprob, "bytes": list(data)}

    content = [{**entry(t.token, t.logprob), "top_logprobs": [entry(i, v) for i, v in t.top]} for t in logprobs or []]
    return {"content": content, "refusal": None}


def completion_logprobs(tokenizer: Any, logprobs: list[TokenLogprob] | None, prompt: str) -> dict[str, Any]:
    """The legacy completions `logprobs`: tokens, token_logprobs, top_logprobs (token text ->
    log-probability) and text_offset (where each token starts, in characters of prompt + reply)."""
    logprobs = logprobs or []
    ids = [t.token for t in logprobs]
    offsets = [len(prompt) + len(tokenizer.decode(ids[:k], skip_special_tokens=True)) for k in range(len(ids))]
    return {"tokens": [token_text(token_bytes(tokenizer, i)) for i in ids], "token_logprobs": [t.logprob for t in logprobs],
            "top_logprobs": [{token_text(token_bytes(tokenizer, i)): v for i, v in t.top} for t in logprobs], "text_offset": offsets}


def _byte_alphabet() -> dict[str, int]:
    """GPT-2's byte-level alphabet: character -> the byte it spells (printable bytes spell
    themselves; the rest are shifted above 255)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[chr(b)] = b
        else:
            chars[chr(256 + extra)] = b
            extra += 1
    return chars


_BYTE_OF = _byte_alphabet()
