"""The one record schema every dataset, generation and table shares, and its file IO.

A record is a human or generated example with its provenance. Provenance is never
dropped: `source`, `generation`, `parent_id` and `generator` are how every table and
plot is cut.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from collapselab import textio
from collapselab.errors import CollapselabError

Source = Literal["human", "synthetic", "contaminated"]
SOURCES: tuple[str, ...] = ("human", "synthetic", "contaminated")


class RecordError(CollapselabError, ValueError):
    """A record or records file is malformed; the message names the file, record and field."""


@dataclass(frozen=True, slots=True)
class Record:
    """One example with provenance.

    Task fields are optional: `lm` records carry `text`; `qa` records carry `context`,
    `question` and `answers` (empty for an unanswerable SQuAD v2 question); `mcq` records
    carry `question`, `choices` and `label` (index of the correct choice).
    """

    id: str
    source: Source = "human"
    generation: int | None = None  # None for human data; g for data written by model_g
    parent_id: str | None = None  # the record this one was generated from
    generator: str | None = None  # JSON: model and decoding settings that wrote it
    text: str | None = None
    title: str | None = None  # article/document; train/test splits never share one
    context: str | None = None
    question: str | None = None
    answers: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    label: int | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise RecordError(f"record {self.id!r}: field 'source' is {self.source!r}, expected one of {SOURCES}")
        # Every construction path ends here: a dict or a list slipping into `answers`
        # (HF's {"text": [...], "answer_start": [...]} would iterate as its two keys)
        # would be scored as if those were the reference answers.
        for name in ("answers", "choices"):
            value = getattr(self, name)
            if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
                raise RecordError(f"record {self.id!r}: field {name!r} must be a list of strings, got {value!r:.80}")
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))  # frozen: records stay hashable

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["answers"] = list(self.answers)
        d["choices"] = list(self.choices)
        return d

    def derive(self, **changes: Any) -> Record:
        """A copy with some fields changed (e.g. a synthetic answer with its parent)."""
        return replace(self, **changes)


RECORD_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Record))
_TEXT_FIELDS = ("source", "parent_id", "generator", "text", "title", "context", "question", "subject")


def record_from_dict(d: dict[str, Any], *, where: str = "<dict>") -> Record:
    """Build a Record from a mapping, naming `where` (file and line) in any error."""
    if not isinstance(d, dict):
        raise RecordError(f"{where}: expected a record object, got {type(d).__name__}")
    if "id" not in d or d["id"] in (None, ""):
        raise RecordError(f"{where}: record is missing field 'id'")
    if isinstance(d["id"], bool) or not isinstance(d["id"], str | int):
        raise RecordError(f"{where}: field 'id' must be a string, got {type(d['id']).__name__} {d['id']!r:.60}")
    unknown = set(d) - set(RECORD_FIELDS)
    if unknown:
        raise RecordError(f"{where}: record {d['id']!r} has unknown field(s) {sorted(unknown)}")
    kw = dict(d)
    kw["id"] = str(kw["id"])
    kw["answers"] = answers_from(kw.get("answers"), where=f"{where}: record {kw['id']!r}")
    kw["choices"] = _strings(kw.get("choices"), "choices", where=f"{where}: record {kw['id']!r}")
    for name in _TEXT_FIELDS:
        value = kw.get(name)
        if value is not None and not isinstance(value, str):
            raise RecordError(f"{where}: record {kw['id']!r} field {name!r} must be a string, got {type(value).__name__} {value!r:.60}")
    for name in ("generation", "label"):
        if kw.get(name) is not None:
            try:
                kw[name] = int(kw[name])
            except (TypeError, ValueError):
                raise RecordError(f"{where}: record {d['id']!r} field {name!r} must be an integer, got {kw[name]!r}") from None
    try:
        return Record(**kw)
    except RecordError as e:
        raise RecordError(f"{where}: {e}") from None


def answers_from(value: Any, *, where: str) -> tuple[str, ...]:
    """The reference answers of a record as read from a file, in every form a user has.

    Accepted: a list of strings; a list of SQuAD answer objects (`{"text": ..., ...}`);
    the Hugging Face datasets form `{"text": [...], "answer_start": [...]}` (what
    `datasets` writes to JSON and Parquet for SQuAD). Anything else is refused: iterating
    a dict would silently make its keys the answers.

    Raises:
        RecordError: naming `where`, the field and what was found.
    """
    if isinstance(value, dict):
        if "text" not in value:
            raise RecordError(f"{where}: field 'answers' is an object without 'text' (keys {sorted(value)}); expected a list of strings or {{\"text\": [...]}}")
        return _strings(value["text"], "answers.text", where=where)
    if isinstance(value, list | tuple):
        value = [a["text"] if isinstance(a, dict) and "text" in a else a for a in value]
    return _strings(value, "answers", where=where)


def _strings(value: Any, name: str, *, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise RecordError(f"{where}: field {name!r} must be a list of strings, got {type(value).__name__} {value!r:.60}")
    for k, v in enumerate(value):
        if not isinstance(v, str):
            raise RecordError(f"{where}: field {name!r} item {k} must be a string, got {type(v).__name__} {v!r:.60}")
    return tuple(value)


def require_fields(records: Sequence[Record], names: Sequence[str], *, where: str) -> None:
    """Raise naming the first record that lacks one of `names` (None or empty)."""
    for r in records:
        for n in names:
            v = getattr(r, n)
            if v is None or (isinstance(v, str) and v == "" and n != "text"):
                raise RecordError(f"{where}: record {r.id!r} is missing field {n!r}")


def _atomic_target(path: Path) -> tuple[int, str]:
    """A new temporary file beside `path`, under a name no other writer picks.

    Created with mode 0666 less the process's umask (as `open` creates files), not mkstemp's
    0600: the file is renamed onto `path`, and a run directory, report or export must be as
    readable as any other file the user writes (0644 under the usual umask 022).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.tmp"
    return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), str(tmp)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write a file so readers see either the old or the complete new content."""
    path = Path(path)
    with textio.disk_space_for(path, len(data)):
        fd, tmp = _atomic_target(path)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_records(path: str | os.PathLike[str], records: Sequence[Record]) -> None:
    """Write records atomically as Parquet (`.parquet`) or JSONL (`.jsonl`)."""
    path = Path(path)
    rows = [r.to_dict() for r in records]
    if path.suffix == ".jsonl":
        atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
        return
    if path.suffix != ".parquet":
        raise RecordError(f"{path}: unsupported records file type {path.suffix!r} (use .parquet or .jsonl)")
    import pyarrow as pa

    atomic_write_parquet(path, pa.Table.from_pylist(rows, schema=_arrow_schema()))


def atomic_write_parquet(path: str | os.PathLike[str], table: Any) -> None:
    """Write a pyarrow table atomically: readers see the old file or the complete new one."""
    import pyarrow.parquet as pq

    path = Path(path)
    with textio.disk_space_for(path, table.nbytes):  # the in-memory size: compression only makes it less
        fd, tmp = _atomic_target(path)
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """Read records written by `write_records` (Parquet or JSONL), naming the file on error."""
    path = Path(path)
    if not path.exists():
        raise RecordError(f"{path}: records file does not exist")
    if path.suffix == ".jsonl":
        return [record_from_dict(d, where=f"{path}:{i}") for i, d in textio.read_jsonl(path, error=RecordError)]
    rows = textio.read_parquet(path, error=RecordError).to_pylist()
    return [record_from_dict(d, where=f"{path} row {i}") for i, d in enumerate(rows)]


def _arrow_schema() -> Any:
    import pyarrow as pa

    s, i = pa.string(), pa.int64()
    return pa.schema(
        [
            ("id", s), ("source", s), ("generation", i), ("parent_id", s), ("generator", s),
            ("text", s), ("title", s), ("context", s), ("question", s),
            ("answers", pa.list_(s)), ("choices", pa.list_(s)), ("label", i), ("subject", s),
        ]
    )

