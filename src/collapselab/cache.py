"""The one cache directory: shared by runs, keyed by content hash."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from collapselab.textio import disk_space_for


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
            with disk_space_for(entry, None):  # a full disk: one line naming the entry, no partial entry
                scratch = new_folder_beside(entry)
                try:
                    build(scratch / entry.name)
                    apply_umask(scratch / entry.name)
                    os.replace(scratch / entry.name, entry)
                finally:
                    shutil.rmtree(scratch, ignore_errors=True)
    return entry


def new_folder_beside(path: Path) -> Path:
    """A new empty folder in `path`'s folder, under a hidden name no other process picks.

    Made with the process's umask (0755 under the usual 022), not mkdtemp's 0700: what is
    built inside it is renamed into place, and a cache, run directory or model folder must be
    as readable as any other folder the user makes.
    """
    folder = path.parent / f".{path.name}.{secrets.token_hex(8)}"
    folder.mkdir()
    return folder


def apply_umask(root: Path) -> None:
    """Give `root` and everything under it the mode a plain `open` or `mkdir` gives (0666 or
    0777 less the process's umask: 0644 and 0755 under the usual 022). Some libraries write
    through private temporary files (safetensors leaves model weights 0600); a model folder,
    like any file of a run, must be as readable as the user's umask says."""
    mask = os.umask(0o022)  # the only portable way to read it is to set it
    os.umask(mask)
    for path in [root, *root.rglob("*")] if root.is_dir() else [root]:
        if not path.is_symlink():
            path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)
