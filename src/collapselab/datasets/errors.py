"""The one error every dataset loader raises, and the field check that raises it."""

from __future__ import annotations

from typing import Any

from collapselab.errors import CollapselabError


class DatasetError(CollapselabError, ValueError):
    """A dataset is missing or malformed; the one-line message names the file, record and field."""


def require(obj: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """Return `obj[key]`, raising DatasetError naming `where` and `key` if absent or mistyped.

    Args:
        obj: The parsed JSON object (or CSV row) expected to be a mapping.
        key: The field to read.
        kind: The type(s) the value must have.
        where: File and record, e.g. ``"dev.json: question '56be…'"``, for the message.
    """
    if not isinstance(obj, dict):
        raise DatasetError(f"{where}: expected an object with field {key!r}, got {type(obj).__name__}")
    if key not in obj or obj[key] is None:
        raise DatasetError(f"{where}: missing field {key!r}")
    value = obj[key]
    # bool is an int subclass: a `true` where a number belongs is still a mistake.
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
        names = "/".join(k.__name__ for k in _as_tuple(kind))
        raise DatasetError(f"{where}: field {key!r} must be {names}, got {type(value).__name__} {value!r:.60}")
    return value


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)
