"""Turning a conversation into prompt token ids, and a reply back into text.

Instruct models (a tokenizer with a chat template) answer through their own template.
Base models, such as a scratch run's generation, never saw a template: they get a plain
transcript (`User: ...` / `Assistant: ...`) and their reply is cut where they start the
user's next turn. (Moves to `collapselab.prompts` once that module is on main.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

USER, ASSISTANT = "User", "Assistant"
BASE_STOP = f"\n{USER}:"  # a base model that goes on to write the user's turn has finished


def is_instruct(tokenizer: Any) -> bool:
    """True when the tokenizer carries a chat template."""
    return bool(getattr(tokenizer, "chat_template", None))


def chat_prompt(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Prompt ids for a conversation ending in a user turn; the model writes the next turn."""
    if is_instruct(tokenizer):
        ids = tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return list(ids)
    lines = []
    for m in messages:
        role = {"user": USER, "assistant": ASSISTANT}.get(m["role"])
        if role is None:  # a system message is the transcript's preamble
            lines.append(m["content"])
        else:
            lines.append(f"{role}: {m['content']}")
    text = "\n".join(lines) + f"\n{ASSISTANT}:"
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def completion_prompt(tokenizer: Any, prompt: str) -> list[int]:
    """Prompt ids for a plain text continuation."""
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def chat_stops(tokenizer: Any) -> list[str]:
    """Stop strings a chat reply is cut at (the template's EOS already stops decoding)."""
    return [] if is_instruct(tokenizer) else [BASE_STOP]


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of a streamed `text` might begin a stop string (or are an
    unfinished multi-byte character), so they are not sent until the next tokens decide."""
    # Bytes of an unfinished character decode as trailing U+FFFDs; the next token may finish it.
    n = len(text) - len(text.rstrip("\ufffd"))
    for s in stops:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                n = max(n, k)
                break
    return n
