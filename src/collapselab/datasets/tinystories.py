"""TinyStories plain text: `<|endoftext|>`-separated stories, or blank-line separated blocks."""

from __future__ import annotations

import re
from pathlib import Path

from collapselab.records import Record

from .files import read_text

END_OF_TEXT = "<|endoftext|>"


def read_tinystories(path: Path) -> list[Record]:
    """Read a TinyStories text file into `lm` records, one per document.

    The official `TinyStories-*.txt` separate stories with `<|endoftext|>`, so each
    story is a document. The shared prefix (`tinystories_valid_prefix.txt`) separates
    both stories and the paragraphs inside them by a blank line; story boundaries are
    not recoverable there, so each blank-line block is a document. A train/test split
    by title may then put two paragraphs of one story on different sides: the stories
    are short and formulaic, so this leaks little, but it is not a clean split.

    Args:
        path: UTF-8 text.

    Returns:
        Records with id and title `<file name>:<line>` (the 1-based first line of the
        document) and text the document with surrounding whitespace stripped.
    """
    text = read_text(path)
    separator = END_OF_TEXT if END_OF_TEXT in text else None
    records = []
    line = 1
    for piece in text.split(END_OF_TEXT) if separator else _blocks(text):
        stripped = piece.strip()
        first = line + piece[: len(piece) - len(piece.lstrip())].count("\n")
        line += piece.count("\n")
        if stripped:
            rid = f"{path.name}:{first}"
            records.append(Record(id=rid, title=rid, text=stripped))
    return records


def _blocks(text: str) -> list[str]:
    # Split on blank lines but keep every newline in some piece, so line numbers add up.
    # Only "\n" ends a line: str.splitlines would also break at U+0085 and U+2028.
    pieces: list[str] = []
    current: list[str] = []
    for row in re.findall(r"[^\n]*\n|[^\n]+$", text):
        if not row.strip() and current and current[-1].strip():
            pieces.append("".join(current))
            current = []
        current.append(row)
    pieces.append("".join(current))
    return pieces
