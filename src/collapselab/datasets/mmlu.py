"""MMLU in the original release CSV: `<split>/<subject>_<split>.csv`, no header, 6 columns."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from collapselab.records import Record

from .errors import DatasetError
from .files import read_text

SPLITS = ("dev", "val", "test")
LETTERS = "ABCD"
_FILE_NAME = re.compile(r"^(?P<subject>.+)_(?P<split>dev|val|test)\.csv$")


def read_mmlu(path: Path) -> list[Record]:
    """Read one subject's CSV, or every `*.csv` of a split folder (subjects in name order).

    Args:
        path: `<subject>_<split>.csv` (rows: question, A, B, C, D, answer letter) or its folder.

    Returns:
        `mcq` records with id `<subject>_<split>:<row>` (1-based), question, the 4 `choices`,
        `label` (0-3), `subject`, and `answers` = (the correct choice,).

    Raises:
        DatasetError: naming the file, the row and the field.
    """
    if path.is_dir():
        files = sorted(path.glob("*.csv"))
        if not files:
            raise DatasetError(f"{path}: no MMLU <subject>_<split>.csv files in this folder")
        return [r for f in files for r in read_mmlu(f)]
    match = _FILE_NAME.match(path.name)
    if match is None:
        raise DatasetError(f"{path}: MMLU file names must be <subject>_<split>.csv with split one of {SPLITS}")
    subject = match["subject"]
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    records = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if len(row) != 6:
            raise DatasetError(f"{where}: expected 6 columns (question, A, B, C, D, answer), got {len(row)}")
        answer = row[5].strip()
        if answer not in LETTERS or not answer:
            raise DatasetError(f"{where}: field 'answer' must be one of A/B/C/D, got {row[5]!r}")
        choices = tuple(row[1:5])
        label = LETTERS.index(answer)
        records.append(
            Record(
                id=f"{path.stem}:{len(records) + 1}",
                question=row[0],
                choices=choices,
                label=label,
                answers=(choices[label],),
                subject=subject,
            )
        )
    return records


def subjects_in(folder: Path) -> list[str]:
    """The subjects that have a CSV in a split folder, in name order."""
    names = (_FILE_NAME.match(f.name) for f in sorted(folder.glob("*.csv")))
    return [m["subject"] for m in names if m is not None]
