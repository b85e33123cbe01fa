"""Train/test splits by title and deterministic subsets, stable across processes and machines.

Every random choice here ranks items by a SHA-256 of (seed, key) rather than by Python's
`hash` or a shuffled list: the same seed picks the same records under any PYTHONHASHSEED,
and a larger subset contains every smaller one drawn with the same seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from collapselab.records import Record

from .errors import DatasetError


@dataclass(slots=True)
class Splits:
    """A dataset's human train pool and held-out test set.

    Attributes:
        name: The registry name (e.g. ``"squad_v2"``).
        train: Training records, in file order.
        test: Test records, in file order; no title is in both.
        files: The files (or folders) they were read from.
    """

    name: str
    train: list[Record]
    test: list[Record]
    files: list[Path] = field(default_factory=list)


def _rank(seed: int, key: str) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).digest()


def group_key(record: Record) -> str:
    """The split unit: the title, or the record itself when it has none."""
    return f"title\x00{record.title}" if record.title is not None else f"id\x00{record.id}"


def split_by_title(
    records: Sequence[Record], *, seed: int, test_fraction: float, where: str
) -> tuple[list[Record], list[Record]]:
    """Split records into train and test so that no title is on both sides.

    Titles are taken in seeded order into the test set until it holds at least
    `test_fraction` of the records; both sides keep file order.

    Args:
        records: The records to split.
        seed: Chooses which titles go to test.
        test_fraction: Share of records wanted in test, in (0, 1).
        where: The dataset and file, for error messages.

    Raises:
        DatasetError: If the fraction is out of range or there are fewer than 2 titles.
    """
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"{where}: test_fraction must be in (0, 1), got {test_fraction}")
    sizes: dict[str, int] = {}
    for r in records:
        key = group_key(r)
        sizes[key] = sizes.get(key, 0) + 1
    if len(sizes) < 2:
        raise DatasetError(f"{where}: cannot split {len(records)} record(s) with {len(sizes)} title(s) into train and test")
    want = test_fraction * len(records)
    test_keys: set[str] = set()
    taken = 0
    # Stop one title short of all of them, so train is never empty.
    for key in sorted(sizes, key=lambda k: _rank(seed, k))[: len(sizes) - 1]:
        if taken >= want:
            break
        test_keys.add(key)
        taken += sizes[key]
    train = [r for r in records if group_key(r) not in test_keys]
    test = [r for r in records if group_key(r) in test_keys]
    return train, test


def subset(records: Sequence[Record], n: int | None, seed: int) -> list[Record]:
    """A deterministic sample of `n` records, in their original order.

    Args:
        records: The pool.
        n: How many; None, or n >= len(records), returns all of them.
        seed: Same seed, same sample; records are ranked by (seed, id, position).
    """
    if n is None or n >= len(records):
        return list(records)
    if n < 0:
        raise DatasetError(f"subset size must be >= 0, got {n}")
    ranked = sorted(range(len(records)), key=lambda i: (_rank(seed, records[i].id), i))
    keep = set(ranked[:n])
    return [r for i, r in enumerate(records) if i in keep]


def subset_by_title(records: Sequence[Record], n: int | None, seed: int) -> list[Record]:
    """A deterministic sample of `n` records drawn from as few titles as possible.

    Whole titles are taken in seeded order; the last one is cut to reach exactly `n`
    (keeping its first records), so e.g. QA training questions come from few articles.

    Args:
        records: The pool.
        n: How many; None, or n >= len(records), returns all of them.
        seed: Same seed, same sample.
    """
    if n is None or n >= len(records):
        return list(records)
    if n < 0:
        raise DatasetError(f"subset size must be >= 0, got {n}")
    by_key: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_key.setdefault(group_key(r), []).append(i)
    keep: list[int] = []
    for key in sorted(by_key, key=lambda k: _rank(seed, k)):
        keep.extend(by_key[key][: n - len(keep)])
        if len(keep) == n:
            break
    chosen = set(keep)
    return [r for i, r in enumerate(records) if i in chosen]
