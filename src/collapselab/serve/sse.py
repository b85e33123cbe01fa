"""Server-sent events of the streaming routes: one chunk's line, the streams of a request's
`n` choices merged as their events come, and a failure mid-stream sent as one error event
(the status line is already sent by then)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from collapselab.serve.scheduler import Delta, Done
from collapselab.serve.schemas import ApiError


def sse(obj: Any) -> str:
    return f"data: {json.dumps(obj)}\n\n"


async def merged(streams: list[AsyncIterator[Any]]) -> AsyncIterator[tuple[int, Any]]:
    """(k, event) from several streams as each comes: the n choices of one streamed request."""
    if len(streams) == 1:  # the common case: no tasks
        async for ev in streams[0]:
            yield 0, ev
        return
    out: asyncio.Queue = asyncio.Queue()
    end = object()

    async def pump(k: int, stream: AsyncIterator[Any]) -> None:
        try:
            async for ev in stream:
                await out.put((k, ev))
        finally:
            await out.put((k, end))

    tasks = [asyncio.create_task(pump(k, s)) for k, s in enumerate(streams)]
    try:
        left = len(tasks)
        while left:
            k, ev = await out.get()
            if ev is end:
                left -= 1
            else:
                yield k, ev
    finally:
        for t in tasks:  # a dropped client: the choices' streams close, their jobs are cancelled
            t.cancel()


async def guarded(events: AsyncIterator[Delta | Done]) -> AsyncIterator[Delta | Done | dict[str, Any]]:
    """A stream's events; a failure mid-stream becomes one error event (the status is sent)."""
    try:
        async for ev in events:
            yield ev
    except ApiError as e:
        yield e.body()
