"""What each dataset name means: its reader, the file layouts it accepts, and where to download it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from collapselab.records import Record

from .cosmosqa import read_cosmosqa
from .files import read_records_file
from .mmlu import read_mmlu
from .squad import read_squad
from .tinystories import read_tinystories
from .wikitext import read_wikitext


@dataclass(frozen=True, slots=True)
class Layout:
    """Files (or folders) inside a dataset folder; `test=()` means split `train` by title."""

    train: tuple[str, ...]
    test: tuple[str, ...] = ()

    def describe(self) -> str:
        return " + ".join(self.train + self.test)


@dataclass(frozen=True, slots=True)
class Download:
    """One official file; `extract` is the archive folder whose contents land in the dataset folder."""

    url: str
    extract: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """A registered dataset.

    Attributes:
        read: Reads one file (or, for MMLU, a split folder) into records.
        layouts: Accepted folder contents, tried in order; downloads produce the first.
        folder: The folder under $COLLAPSELAB_DATA; None for generic files (path required).
        downloads: The official files, fetched only when online and allowed.
        fields: The record fields its reader fills (what a task can ask of it); None: those
            of the file (a generic records file).
    """

    read: Callable[[Path], list[Record]]
    layouts: tuple[Layout, ...]
    folder: str | None
    downloads: tuple[Download, ...] = ()
    fields: tuple[str, ...] | None = None


_SQUAD = "https://rajpurkar.github.io/SQuAD-explorer/dataset/"
_COSMOS = "https://raw.githubusercontent.com/wilburOne/cosmosqa/master/data/"

QA_FIELDS = ("title", "context", "question", "answers")
TEXT_FIELDS = ("text",)

DATASETS: dict[str, Source] = {
    "squad_v2": Source(
        read_squad,
        (
            Layout(("train-v2.0.json",), ("dev-v2.0.json",)),
            Layout(("train-v2.0.first10articles.json",), ("dev-v2.0.explorer-eval.json",)),
        ),
        "squad_v2",
        (Download(_SQUAD + "train-v2.0.json"), Download(_SQUAD + "dev-v2.0.json")),
        fields=QA_FIELDS,
    ),
    "squad_v1.1": Source(
        read_squad,
        (Layout(("train-v1.1.json",), ("dev-v1.1.json",)), Layout(("dev-v1.1.explorer-eval.json",))),
        "squad_v1.1",
        (Download(_SQUAD + "train-v1.1.json"), Download(_SQUAD + "dev-v1.1.json")),
        fields=QA_FIELDS,
    ),
    "cosmosqa": Source(
        read_cosmosqa,
        (
            Layout(("train.csv",), ("valid.csv",)),
            Layout(("train.jsonl",), ("valid.jsonl",)),
            Layout(("valid.jsonl",)),
            Layout(("valid.csv",)),
        ),
        "cosmosqa",
        (Download(_COSMOS + "train.csv"), Download(_COSMOS + "valid.csv")),
        fields=QA_FIELDS + ("choices", "label"),
    ),
    "wikitext2": Source(
        read_wikitext,
        (Layout(("wiki.train.raw",), ("wiki.test.raw",)),),
        "wikitext2",
        (Download("https://s3.amazonaws.com/research.metamind.io/wikitext/wikitext-2-raw-v1.zip", "wikitext-2-raw/"),),
        fields=TEXT_FIELDS,
    ),
    "tinystories": Source(
        read_tinystories,
        (Layout(("TinyStories-valid.txt",)), Layout(("tinystories_valid_prefix.txt",))),
        "tinystories",
        (Download("https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main/TinyStories-valid.txt"),),
        fields=TEXT_FIELDS,
    ),
    # Few-shot exemplars (dev) are the "train" side; val is reached through load_mmlu.
    "mmlu": Source(
        read_mmlu,
        (Layout(("dev",), ("test",)),),
        "mmlu",
        (Download("https://people.eecs.berkeley.edu/~hendrycks/data.tar", "data/"),),
        fields=("question", "choices", "label", "subject"),
    ),
    "jsonl": Source(
        read_records_file,
        tuple(Layout((f"train.{ext}",), (f"test.{ext}",)) for ext in ("jsonl", "parquet", "csv")),
        None,
    ),
}
DATASETS["records"] = DATASETS["jsonl"]
