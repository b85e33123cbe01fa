"""Stop strings in streamed replies: where a reply ends, and what not to send yet."""

from __future__ import annotations

from collections.abc import Sequence


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
