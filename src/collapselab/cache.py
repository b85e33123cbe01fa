"""The one cache directory: shared by runs, keyed by content hash."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def cache_dir(*parts: str) -> Path:
    """`$COLLAPSELAB_CACHE/<parts...>`, default `~/.cache/collapselab/<parts...>`.

    Everything under it is written atomically and named by a hash of what made it
    (scratch tokenizers and bases, dequantized models, gibberish calibrations, downloads),
    so runs, arms and processes share it safely.
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
