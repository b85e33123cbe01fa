"""Find a dataset on disk: explicit path, then $COLLAPSELAB_DATA, then the download cache, then the web.

Nothing at run or test time may need the internet, so the web is the last resort: it is
tried only when no offline switch is set and a 2-second connection check succeeds.
"""

from __future__ import annotations

import os
import shutil
import socket
import tarfile
import threading
import urllib.request
import zipfile
from pathlib import Path
from urllib.parse import urlparse

from collapselab.cache import cache_dir as root
from collapselab.cache import filled

from .errors import DatasetError
from .registry import DATASETS, Layout, Source

OFFLINE_VARS = ("COLLAPSELAB_OFFLINE", "HF_HUB_OFFLINE")


def get_source(name: str) -> Source:
    """The registered dataset `name`; the error lists the known names."""
    if name not in DATASETS:
        raise DatasetError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def cache_dir() -> Path:
    """Where downloads go: $COLLAPSELAB_CACHE/datasets (default ~/.cache/collapselab/datasets)."""

    return root("datasets")


def find_layout(name: str, folder: Path) -> Layout:
    """The first registered layout whose files all exist in `folder`, or a DatasetError naming them."""
    source = get_source(name)
    for layout in source.layouts:
        if all((folder / f).exists() for f in layout.train + layout.test):
            return layout
    raise DatasetError(f"dataset {name!r}: {folder} lacks the expected files ({_expected(source)})")


def resolve_dataset_path(name: str, explicit_path: str | os.PathLike[str] | None = None) -> Path:
    """Locate dataset `name` as a file or a folder holding one of its layouts.

    Order: `explicit_path` (a file, or a folder with a layout), then
    `$COLLAPSELAB_DATA/<folder>`, then an earlier download in the cache, then the
    official URLs when online (never with COLLAPSELAB_OFFLINE=1 or HF_HUB_OFFLINE=1).

    Raises:
        DatasetError: naming the dataset, the files expected and where to put them.
    """
    source = get_source(name)
    if explicit_path is not None:
        path = Path(explicit_path).expanduser()
        if not path.exists():
            raise DatasetError(f"dataset {name!r}: data.path {path} does not exist")
        if path.is_dir():
            find_layout(name, path)
        return path
    if source.folder is None:
        raise DatasetError(
            f"dataset {name!r} needs data.path: a .jsonl/.csv/.parquet records file or a folder with train.* and test.*"
        )
    data = os.environ.get("COLLAPSELAB_DATA")
    if data and (Path(data) / source.folder).is_dir():
        # A folder that is there but incomplete is an error, not a cue to download over it.
        folder = Path(data) / source.folder
        find_layout(name, folder)
        return folder
    cached = cache_dir() / source.folder
    if cached.is_dir():
        find_layout(name, cached)
        return cached
    why = _why_no_download(source)
    if why is None:
        try:
            filled(cached, lambda staging: download(source, staging))  # once, whoever else asks at the same time
        except (OSError, tarfile.TarError, zipfile.BadZipFile) as e:
            why = f"download failed ({e})"
        else:
            find_layout(name, cached)
            return cached
    raise DatasetError(
        f"dataset {name!r} not found: expected {_expected(source)} in $COLLAPSELAB_DATA/{source.folder}/ "
        f"(COLLAPSELAB_DATA is {data or 'unset'}) or in a folder given as data.path; {why}"
    )


def download(source: Source, dest: Path) -> None:
    """Fetch a dataset's official files into the new folder `dest` (`collapselab.cache.filled`
    gives it a temporary name and moves it into the cache once complete)."""
    dest.mkdir(parents=True)
    for item in source.downloads:
        target = dest / Path(urlparse(item.url).path).name
        with urllib.request.urlopen(item.url, timeout=30) as response, target.open("wb") as f:
            shutil.copyfileobj(response, f, length=1 << 20)
        if item.extract is not None:
            _extract(target, item.extract, dest)
            target.unlink()


def _extract(archive: Path, prefix: str, dest: Path) -> None:
    """Write the archive's files under `prefix` into `dest`, with the prefix cut off."""
    if archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            for name in z.namelist():
                out = _member_target(name, prefix, dest)
                if out is not None and not name.endswith("/"):
                    with z.open(name) as src, out.open("wb") as f:
                        shutil.copyfileobj(src, f, length=1 << 20)
        return
    with tarfile.open(archive) as t:
        for member in t.getmembers():
            out = _member_target(member.name, prefix, dest)
            src = t.extractfile(member) if member.isfile() else None
            if out is not None and src is not None:
                with src, out.open("wb") as f:
                    shutil.copyfileobj(src, f, length=1 << 20)


def _member_target(name: str, prefix: str, dest: Path) -> Path | None:
    # Names that would escape `dest` (absolute, `..`) are refused, not skipped.
    if not name.startswith(prefix):
        return None
    relative = Path(name[len(prefix):])
    if relative.is_absolute() or ".." in relative.parts:
        raise OSError(f"archive member {name!r} escapes the dataset folder")
    out = dest / relative
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _why_no_download(source: Source) -> str | None:
    """None when a download may be tried, else the reason it is skipped."""
    if not source.downloads:
        return "no download URL is known"
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return f"download skipped ({var}={os.environ[var]})"
    host = urlparse(source.downloads[0].url).hostname or ""
    return None if is_online(host) else f"offline (cannot reach {host}), download skipped"


def is_online(host: str, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to `host`:443 opens within `timeout` seconds.

    The check runs in a daemon thread because DNS lookups ignore socket timeouts and
    can stall for much longer on a machine without network.
    """
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _expected(source: Source) -> str:
    return " or ".join(layout.describe() for layout in source.layouts)
