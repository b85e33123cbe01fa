"""CosmosQA (CSV with a header, or the AllenAI JSONL): multiple-choice reading comprehension."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from collapselab import textio
from collapselab.records import Record

from .errors import DatasetError, require
from .files import read_text

FIELDS = ("id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label")


def read_cosmosqa(path: Path) -> list[Record]:
    """Read a CosmosQA `.csv` or `.jsonl` file into one record per question.

    Args:
        path: A file with the fields id, context, question, answer0..answer3, label.

    Returns:
        Records with context, question, the 4 `choices`, `label` (0-3) and
        `answers` = (the labelled choice,), the reference answer for generative QA.
        `title` is the context-group key (see `_context_titles`): train/test splits by
        title keep every context on one side.

    Raises:
        DatasetError: naming the file, the line and the field.
    """
    if path.suffix == ".csv":
        rows = _csv_rows(path)
    elif path.suffix == ".jsonl":
        rows = _jsonl_rows(path)
    else:
        raise DatasetError(f"{path}: unsupported CosmosQA file type {path.suffix!r} (use .csv or .jsonl)")
    records = [_record(row, where) for where, row in rows]
    titles = _context_titles(records)
    return [r.derive(title=titles[r.context]) for r in records]


def _csv_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    missing = [f for f in FIELDS if f not in (reader.fieldnames or [])]
    if missing:
        raise DatasetError(f"{path}: CSV header lacks column(s) {missing}; expected {list(FIELDS)}")
    rows = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row or None in row.values():
            raise DatasetError(f"{where}: row has a different number of fields than the header ({len(reader.fieldnames or [])})")
        rows.append((where, row))
    return rows


def _jsonl_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{path}:{i}", row) for i, row in textio.read_jsonl(path, error=DatasetError)]


def _record(row: dict[str, Any], where: str) -> Record:
    rid = require(row, "id", str, where)
    where = f"{where}: record {rid!r}"
    choices = tuple(require(row, f"answer{k}", str, where) for k in range(4))
    label = _label(require(row, "label", (int, str), where), where)
    return Record(
        id=rid,
        context=require(row, "context", str, where),
        question=require(row, "question", str, where),
        choices=choices,
        label=label,
        answers=(choices[label],),
    )


def _label(value: int | str, where: str) -> int:
    # The CSV holds "2", the JSONL 2; anything outside 0-3 has no choice to point at.
    text = str(value).strip()
    if text not in ("0", "1", "2", "3"):
        raise DatasetError(f"{where}: field 'label' must be 0-3, got {value!r}")
    return int(text)


def _context_titles(records: list[Record]) -> dict[str | None, str]:
    """Map each context to a group key shared by all its questions.

    Ids look like `<HIT>##<assignment>##<worker>##Blog_56156##q1_a1##<HIT>`: the 4th
    part names the source paragraph. In the validation file two contexts appear under
    two paragraph ids each, so the key is the paragraph id of a context's first
    question, and every question on the same text gets it.
    """
    titles: dict[str | None, str] = {}
    for r in records:
        if r.context not in titles:
            parts = r.id.split("##")
            titles[r.context] = parts[3] if len(parts) == 6 else r.id
    return titles
