"""Generic records files (JSONL, CSV, Parquet with Record fields) and the raw reads every loader shares."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from collapselab import textio
from collapselab.records import RECORD_FIELDS, Record, RecordError, read_records, record_from_dict

from .errors import DatasetError

_INT_FIELDS = ("generation", "label")
_LIST_FIELDS = ("answers", "choices")


def read_text(path: Path) -> str:
    """Read a UTF-8 text file, naming it if it is missing, binary or not UTF-8."""
    return textio.read_text(path, error=DatasetError)


def load_json(path: Path) -> Any:
    """Parse a JSON file, naming the file, line and column on a syntax error."""
    return textio.read_json(path, error=DatasetError)


def read_records_file(path: Path) -> list[Record]:
    """Read a generic records file: `.jsonl`, `.csv` (header of Record fields) or `.parquet`.

    Args:
        path: The file. CSV cells of `answers`/`choices` hold JSON lists; empty cells are missing.

    Returns:
        The records in file order.

    Raises:
        RecordError: A record is malformed; the message names the file, line and field.
        DatasetError: The file is missing, unreadable or of an unknown type.
    """
    if path.suffix == ".parquet":
        return read_records(path)  # typed columns: the records module checks them
    if path.suffix == ".jsonl":
        rows = _jsonl_rows(path)
    elif path.suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise DatasetError(f"{path}: unsupported records file type {path.suffix!r} (use .jsonl, .csv or .parquet)")
    return [_record(row, where) for where, row in rows]


def _jsonl_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    rows = []
    for i, row in textio.read_jsonl(path, error=RecordError):
        if not isinstance(row, dict):
            raise RecordError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}")
        rows.append((f"{path}:{i}", row))
    return rows


def _csv_rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    header = reader.fieldnames or []
    unknown = [c for c in header if c not in RECORD_FIELDS]
    if unknown or "id" not in header:
        raise RecordError(f"{path}: header must name Record fields incl. 'id'; unknown column(s) {unknown}")
    rows = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        if None in row or None in row.values():
            raise RecordError(f"{where}: row has a different number of fields than the header ({len(header)})")
        # An empty cell means "not set": CSV cannot tell None from "".
        clean: dict[str, Any] = {k: v for k, v in row.items() if v != ""}
        for name in _LIST_FIELDS:
            if name in clean:
                try:
                    clean[name] = json.loads(clean[name])
                except json.JSONDecodeError:
                    raise RecordError(f"{where}: field {name!r} must be a JSON list, got {clean[name]!r:.60}") from None
        rows.append((where, clean))
    return rows


def _record(row: dict[str, Any], where: str) -> Record:
    # record_from_dict converts ints itself but would raise a bare ValueError naming no file.
    for name in _INT_FIELDS:
        value = row.get(name)
        if value is not None and (isinstance(value, bool) or not _is_int(value)):
            raise RecordError(f"{where}: record {row.get('id')!r} field {name!r} must be an integer, got {value!r}")
    try:
        return record_from_dict(row, where=where)
    except RecordError as e:
        # Record's own checks (e.g. `source`) name the record but not the file.
        if str(e).startswith(where):
            raise
        raise RecordError(f"{where}: {e}") from None


def _is_int(value: Any) -> bool:
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()
