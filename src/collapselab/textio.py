"""Reading the files a user hands in: UTF-8 text, JSON, JSON Lines, YAML and Parquet.

Every reader of a config, a data file, a predictions file or a run directory's JSON or
Parquet goes through here, so a file that is missing, a folder, binary, not UTF-8, empty,
truncated or syntactically broken always fails the same way: a one-line named error that says which
file, and where in it (line and column, or the JSON Lines record). Each caller passes the
error class of its own layer (`DatasetError`, `ConfigError`, `StoreError`...), so callers
keep catching what they caught before.

Writers share one guard, `disk_space_for`: a full disk while writing any file or folder
becomes `DiskFull`, one line naming the path and the space it needed.

It also writes the one kind of text the loop prints on its own: progress (`progress`), a
live bar on a terminal, a plain line now and then in a log file, nothing when asked.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

from collapselab.errors import CollapselabError, DiskFull


class FileFormatError(CollapselabError, ValueError):
    """A file cannot be read as the text, JSON or YAML it should be; the message names it."""


ErrorClass = type[CollapselabError]


def read_text(path: str | os.PathLike[str], *, error: ErrorClass = FileFormatError) -> str:
    """The whole file as text, checked to be UTF-8 and not binary.

    A leading byte-order mark is dropped (editors on Windows write one; it is not content).

    Args:
        path: The file.
        error: The named error to raise (a `CollapselabError` subclass).

    Raises:
        error: The file is missing, a folder, unreadable, not UTF-8, or binary (holds NUL
            bytes, as no text, JSON or YAML file does); the message names the file and,
            for a decoding error, the line.
    """
    path = Path(path)
    data = read_bytes(path, error=error)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        start = e.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        raise error(f"{path}:{line}: not UTF-8 text (byte {data[start]:#04x} at offset {start}); save the file as UTF-8") from None
    nul = text.find("\x00")
    if nul >= 0:
        raise error(f"{path}:{text.count(chr(10), 0, nul) + 1}: not a text file (NUL byte at character {nul})")
    return text


def read_bytes(path: str | os.PathLike[str], *, error: ErrorClass = FileFormatError) -> bytes:
    """The file's bytes; a missing, folder or unreadable path raises `error` naming it."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: file does not exist") from None
    except IsADirectoryError:
        raise error(f"{path}: is a folder, expected a file") from None
    except PermissionError:
        raise error(f"{path}: permission denied") from None
    except OSError as e:
        raise error(f"{path}: cannot be read ({e.strerror or e})") from None


def read_json(path: str | os.PathLike[str], *, error: ErrorClass = FileFormatError) -> Any:
    """Parse a JSON file; an empty, truncated or malformed file raises naming the line and column."""
    path = Path(path)
    return parse_json(read_text(path, error=error), where=str(path), error=error)


def parse_json(text: str, *, where: str, error: ErrorClass = FileFormatError) -> Any:
    """Parse JSON held in a string (a file's text, a database column), naming `where` on error."""
    if not text.strip():
        raise error(f"{where}: empty, expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        # A file cut short (a copy interrupted, a disk full) fails at its very end.
        cut = " (the text ends early: truncated?)" if e.pos >= len(text.rstrip()) else ""
        raise error(f"{where}:{e.lineno}:{e.colno}: not valid JSON ({e.msg}){cut}") from None


def read_jsonl(path: str | os.PathLike[str], *, error: ErrorClass = FileFormatError) -> Iterator[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a JSON Lines file.

    Raises:
        error: The file cannot be read as text, or a line is not one JSON value; the
            message names the file and the line.
    """
    path = Path(path)
    for i, line in enumerate(read_text(path, error=error).split("\n"), 1):
        if line.strip():
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as e:
                raise error(f"{path}:{i}: not valid JSON ({e.msg} at column {e.colno})") from None


def read_yaml(path: str | os.PathLike[str], *, error: ErrorClass = FileFormatError) -> Any:
    """Parse a YAML file; an empty file, a syntax error or a key given twice raises naming the line."""
    path = Path(path)
    return parse_yaml(read_text(path, error=error), where=str(path), error=error)


def parse_yaml(text: str, *, where: str, error: ErrorClass = FileFormatError) -> Any:
    """Parse YAML held in a string, naming `where` (and the line) on error."""
    import yaml

    if not text.strip():
        raise error(f"{where}: empty, expected YAML")
    try:
        return yaml.load(text, Loader=_unique_key_loader())
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        what = " ".join(str(p) for p in (e.context, e.problem) if p)
        raise error(f"{where}{at}: not valid YAML ({what})") from None
    except yaml.YAMLError as e:
        raise error(f"{where}: not valid YAML ({' '.join(str(e).split())})") from None


def read_parquet(
    path: str | os.PathLike[str], *, columns: list[str] | None = None, error: ErrorClass = FileFormatError
) -> Any:
    """A Parquet file as a `pyarrow.Table` (only `columns`, when given).

    Raises:
        error: The file is missing, a folder, or not readable as Parquet (damaged, cut short,
            another format, a column not in it); one line naming the file.
    """
    return _guarded_parquet(Path(path), error, lambda pq, p: pq.read_table(p, columns=columns))


def parquet_row_count(path: str | os.PathLike[str], *, error: ErrorClass = FileFormatError) -> int:
    """Rows of a Parquet file, from its footer alone; raises like `read_parquet`."""
    return _guarded_parquet(Path(path), error, lambda pq, p: pq.read_metadata(p).num_rows)


def _guarded_parquet(path: Path, error: ErrorClass, read: Callable[[Any, Path], Any]) -> Any:
    import pyarrow.parquet as pq

    if path.is_dir():  # pyarrow would read a folder as a partitioned dataset
        raise error(f"{path}: is a folder, expected a file")
    if not path.exists():
        raise error(f"{path}: file does not exist")
    try:
        return read(pq, path)
    except Exception as e:  # pyarrow raises several types (ArrowInvalid, OSError...) for a damaged file
        raise error(f"{path}: not a readable Parquet file ({' '.join(str(e).split())})") from None


# ---------------------------------------------------------------- a full disk

_FULL = (errno.ENOSPC, errno.EDQUOT)
# Libraries that write natively do not all raise OSError: safetensors raises its own
# SafetensorError whose text carries the OS error; pyarrow raises OSError with errno set.
_FULL_TEXT = ("No space left on device", "Disk quota exceeded")


@contextlib.contextmanager
def disk_space_for(path: str | os.PathLike[str], needed_bytes: int | None) -> Iterator[None]:
    """Around a write of `path`: a full disk (ENOSPC, a quota) becomes `DiskFull` naming
    `path`, the space the write needed (`needed_bytes`, an estimate; None: unknown) and the
    space free. The writer itself removes its temporary file; this only names the failure.

    Raises:
        DiskFull: the file system of `path` is full (exit code 1).
    """
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        if not is_disk_full(e):
            raise
        raise DiskFull(disk_full_message(Path(path), needed_bytes)) from None


def is_disk_full(e: BaseException) -> bool:
    """Whether `e` says the disk (or the user's quota) is full."""
    if isinstance(e, OSError) and e.errno in _FULL:
        return True
    return any(t in str(e) for t in _FULL_TEXT)


def disk_full_message(path: Path, needed_bytes: int | None) -> str:
    free = _free_bytes(path)
    need = f"about {_size(needed_bytes)}" if needed_bytes is not None else "more than is free"
    where = f"{_size(free)} free there" if free is not None else "free space unknown"
    return (f"{path}: no space left on the device (this write needs {need}, {where}); "
            "nothing partial was kept: free some space and run the same command again")


def _free_bytes(path: Path) -> int | None:
    for folder in (path, *path.parents):  # the nearest folder that exists
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


@functools.cache
def _unique_key_loader() -> Any:
    """A safe YAML loader that refuses a key given twice in one mapping.

    PyYAML keeps the last of two equal keys silently; in a config that is almost always
    a mistake (an override pasted below the original), and the earlier value vanishes.
    """
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # construct_mapping below names the unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return UniqueKeyLoader


# ---------------------------------------------------------------- progress

PROGRESS_ENV = "COLLAPSELAB_PROGRESS"
PROGRESS_MODES = ("bar", "lines", "off")
LINE_EVERY_S = 30.0  # a progress line at most this often (plus one when the work ends)


def progress_mode() -> str:
    """How progress is shown: `$COLLAPSELAB_PROGRESS` (bar, lines or off), else a bar when
    stderr is a terminal and plain lines when it is a file or a pipe (a log file then holds
    a line every `LINE_EVERY_S` seconds, not every redraw of a bar)."""
    mode = os.environ.get(PROGRESS_ENV)
    if mode is None:
        return "bar" if sys.stderr.isatty() else "lines"
    if mode not in PROGRESS_MODES:
        raise CollapselabError(f"${PROGRESS_ENV}={mode!r}: expected one of {', '.join(PROGRESS_MODES)}")
    return mode


def progress(total: int, desc: str, unit: str, *, show: bool = True, leave: bool = True) -> Any:
    """A progress counter for `total` units of work, written to stderr as `progress_mode` says.

    The object has tqdm's `update(n)`, `set_postfix(**values)` and `close()`; `show=False`
    (a rank other than 0, a server's batch) shows nothing whatever the mode.
    """
    mode = progress_mode() if show else "off"
    if mode == "lines":
        return ProgressLines(total, desc, unit)
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=mode == "off", dynamic_ncols=True, leave=leave)


class ProgressLines:
    """Progress as a plain line now and then, for logs: `desc: 40/100 steps (40 %), 12 s,
    about 18 s left, loss=3.100`, at most every `LINE_EVERY_S` seconds, and one when closed."""

    def __init__(self, total: int, desc: str, unit: str):
        self.total, self.desc, self.unit = total, desc, unit
        self.done, self.postfix = 0, ""
        self.started = self.last = time.monotonic()

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self.last >= LINE_EVERY_S:
            self._line()

    def set_postfix(self, refresh: bool = False, **values: Any) -> None:
        self.postfix = ", ".join(f"{k}={v}" for k, v in values.items())

    def close(self) -> None:
        if self.done:
            self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        spent = self.last - self.started
        parts = [f"{self.desc}: {self.done}/{self.total} {self.unit}s ({100 * self.done / max(self.total, 1):.0f} %)", f"{spent:.0f} s"]
        if 0 < self.done < self.total:
            parts.append(f"about {spent * (self.total - self.done) / self.done:.0f} s left")
        if self.postfix:
            parts.append(self.postfix)
        print(", ".join(parts), file=sys.stderr, flush=True)
