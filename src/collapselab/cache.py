"""The one cache directory: shared by runs, keyed by content hash."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def cache_dir(*parts: str) -> Path:
    """`$COLLAPSELAB_CACHE/<parts...>`, default `~/.cache/collapselab/<parts...>`.

    Everything under it is filled by `filled` (once, under a lock, atomically) and named by
    a hash of what made it (scratch tokenizers and bases, dequantized models, gibberish
    calibrations, downloads), so runs, arms and processes share it safely.
    """
    root = os.environ.get("COLLAPSELAB_CACHE") or Path.home() / ".cache" / "collapselab"
    return Path(root).joinpath(*parts)


def content_hash(*parts: Any) -> str:
    """A short hash of what made a cached thing (bytes, text, or anything JSON can say)."""
    h = hashlib.sha256()
    for p in parts:
        if isinstance(p, bytes):
            h.update(p)
        elif isinstance(p, str):
            h.update(p.encode())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]


def filled(entry: Path, build: Callable[[Path], None]) -> Path:
    """The cache entry `entry` (a file or a folder), built by `build` if it is not there yet.

    The one way anything enters the cache, safe between processes (two sweep trials on a cold
    cache, arms of two runs): the entry is built once, under an exclusive lock on the file
    `.<name>.lock` beside it (a second process waits, then reads the finished entry); `build`
    writes to a path in a temporary folder of its own beside the entry, and what it wrote is
    renamed onto `entry` in one step, so a reader finds no entry or a complete one. A build
    that fails leaves nothing behind (the lock file stays: removing it would race a waiter).

    Args:
        entry: where the finished entry lives; it exists only once complete.
        build: writes the entry to the path it is given (not yet existing, same name as
            `entry`, on the same file system); may leave other files in that path's folder.

    Returns:
        `entry`.
    """
    if entry.exists():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    with (entry.parent / f".{entry.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
        if not entry.exists():  # else another process built it while this one waited
            scratch = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
            try:
                build(scratch / entry.name)
                os.replace(scratch / entry.name, entry)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
    return entry
