"""The one cache directory: shared by runs, keyed by content hash."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$COLLAPSELAB_CACHE/<parts...>`, default `~/.cache/collapselab/<parts...>`.

    Everything under it is written atomically and named by a hash of what made it
    (scratch tokenizers and bases, dequantized models, gibberish calibrations, downloads),
    so runs, arms and processes share it safely.
    """
    root = os.environ.get("COLLAPSELAB_CACHE") or Path.home() / ".cache" / "collapselab"
    return Path(root).joinpath(*parts)
