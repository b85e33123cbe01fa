"""Human datasets as Records: one reader per source, a registry, and deterministic splits.

`load_splits(name, path)` is the entry point: it resolves the files (see
`resolve_dataset_path`), reads them, and returns the train pool and held-out test set.
All records are human (`source='human'`, `generation=None`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from collapselab.records import Record

from .errors import DatasetError
from .mmlu import SPLITS as MMLU_SPLITS
from .mmlu import read_mmlu, subjects_in
from .registry import DATASETS, Layout, Source
from .resolve import find_layout, get_source, resolve_dataset_path
from .splits import Splits, split_by_title, subset, subset_by_title

__all__ = [
    "DATASETS",
    "DatasetError",
    "Splits",
    "load_mmlu",
    "load_reference_set",
    "load_splits",
    "resolve_dataset_path",
    "split_by_title",
    "subset",
    "subset_by_title",
]


def load_splits(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    seed: int = 0,
    test_fraction: float = 0.1,
) -> Splits:
    """Load dataset `name` as a train pool and a held-out test set.

    A folder uses the dataset's own train/test files (squad_v2: the train subset and
    the full dev; wikitext2: train and test; mmlu: dev exemplars and test). A single
    file, or a folder holding only one split (squad_v1.1 dev, CosmosQA valid,
    TinyStories), is split by title with `seed`, so no article or context is in both.

    Args:
        name: A key of `DATASETS`: squad_v2, squad_v1.1, cosmosqa, wikitext2,
            tinystories, mmlu, jsonl/records (a generic records file; `path` required).
        path: An explicit file or folder (`data.path`); else resolved by name.
        seed: Chooses the test titles when a split is drawn.
        test_fraction: Share of records in test when a split is drawn.

    Raises:
        DatasetError: The dataset is missing or malformed (or RecordError for a
            generic records file); the message names the file, record and field.
    """
    source = get_source(name)
    root = resolve_dataset_path(name, path)
    layout = Layout((root.name,)) if root.is_file() else find_layout(name, root)
    base = root.parent if root.is_file() else root
    train = _read_all(source, [base / f for f in layout.train])
    if layout.test:
        test = _read_all(source, [base / f for f in layout.test])
    else:
        train, test = split_by_title(
            train, seed=seed, test_fraction=test_fraction, where=f"dataset {name!r} ({root})"
        )
    files = [base / f for f in layout.train + layout.test]
    _check_unique_ids(train + test, name, files)
    return Splits(name=name, train=train, test=test, files=files)


def load_reference_set(
    dataset: str | os.PathLike[str], path: str | os.PathLike[str] | None = None
) -> tuple[list[Record], list[Path]]:
    """Every record of a dataset's held-out file(s), unsplit: what outside predictions are scored on.

    Args:
        dataset: A registered name (its test file, e.g. SQuAD's dev set; a dataset with
            one file, such as squad_v1.1's dev, gives that whole file), or a file: `.json`
            is read as official-format SQuAD, `.jsonl`/`.csv`/`.parquet` as records files.
        path: With a name, read this file (or folder) instead of resolving the name.

    Returns:
        The records in file order, and the files they came from.

    Raises:
        DatasetError: (or RecordError) naming the file, record and field.
    """
    name, file = str(dataset), None if path is None else Path(path)
    if name not in DATASETS:
        file = Path(dataset)
        if path is not None or not (file.exists() or file.suffix in (".json", ".jsonl", ".csv", ".parquet")):
            raise DatasetError(f"{str(dataset)!r}: neither a dataset name ({', '.join(DATASETS)}) nor a data file")
        name = "squad_v2" if file.suffix == ".json" else "jsonl"
    source = get_source(name)
    root = file if file is not None else resolve_dataset_path(name)
    if root.is_dir():
        layout = find_layout(name, root)
        files = [root / f for f in layout.test or layout.train]
    else:
        files = [root]
    records = _read_all(source, files)
    _check_unique_ids(records, name, files)
    return records, files


def load_mmlu(
    split: str,
    subjects: Sequence[str] | None = None,
    path: str | os.PathLike[str] | None = None,
) -> list[Record]:
    """Load one MMLU split (dev, val or test), optionally only some subjects.

    Args:
        split: "dev" (5 few-shot exemplars per subject), "val" or "test".
        subjects: Subject names such as "abstract_algebra"; None means all.
        path: The MMLU folder (with dev/ val/ test/); else resolved like `load_splits`.
    """
    if split not in MMLU_SPLITS:
        raise DatasetError(f"MMLU split must be one of {MMLU_SPLITS}, got {split!r}")
    folder = resolve_dataset_path("mmlu", path) / split
    if not folder.is_dir():
        raise DatasetError(f"dataset 'mmlu': {folder} does not exist")
    if subjects is None:
        return read_mmlu(folder)
    known = subjects_in(folder)
    unknown = [s for s in subjects if s not in known]
    if unknown:
        raise DatasetError(f"dataset 'mmlu': unknown subject(s) {unknown} in {folder}; known: {', '.join(known)}")
    return [r for s in subjects for r in read_mmlu(folder / f"{s}_{split}.csv")]


def _read_all(source: Source, paths: list[Path]) -> list[Record]:
    return [r for p in paths for r in source.read(p)]


def _check_unique_ids(records: list[Record], name: str, files: list[Path]) -> None:
    # Ids key predictions, scores and provenance links: a repeat would merge two examples.
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise DatasetError(f"dataset {name!r} ({', '.join(map(str, files))}): duplicate record id {r.id!r}")
        seen.add(r.id)
