"""Document sources for the learner, behind one interface: `documents(start)` yields the
stream from position `start`.

- `WikiText2Articles`: WikiText-2's articles, each whole (its paragraphs joined), in a seeded
  random order: the offline stand-in for Wikipedia's random articles.
- `TextFolder`: every `*.txt` under a folder, by path.
- `JsonlDocuments`: one `{"text", "id"?, "title"?}` object per line.
- `WikipediaRandom`: the MediaWiki random-article API (`generator=random`, plain-text
  extracts). A random stream has no positions: `start` is ignored, and the learner's spool
  (which records every document before it is trained on) is what makes a resume exact.
"""

from __future__ import annotations

import json
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from collapselab.datasets.resolve import resolve_dataset_path
from collapselab.datasets.wikitext import read_wikitext
from collapselab.learner.config import LearnerError, SourceBlock

USER_AGENT = "collapselab-learner/0.1 (model-collapse research; https://example.invalid/collapselab)"


@dataclass(frozen=True, slots=True)
class Document:
    id: str
    title: str | None
    text: str


class DocumentSource(Protocol):
    """A stream of documents; deterministic sources restart at `start`."""

    def documents(self, start: int) -> Iterator[Document]: ...


def open_source(block: SourceBlock, seed: int) -> DocumentSource:
    """The source a config block names."""
    if block.kind == "wikitext2":
        return WikiText2Articles(_wikitext_dir(block.path), block.split, seed)
    if block.kind == "folder":
        return TextFolder(Path(_required(block.path, "folder")))
    if block.kind == "jsonl":
        return JsonlDocuments(Path(_required(block.path, "jsonl")))
    return WikipediaRandom(block.api_url, block.timeout_s)


def _required(path: str | None, kind: str) -> str:
    if path is None:
        raise LearnerError(f"source.path: required for a {kind} source")
    return path


def _wikitext_dir(path: str | None) -> Path:
    return resolve_dataset_path("wikitext2", path)


class WikiText2Articles:
    """WikiText-2 articles of one split, whole, in an order shuffled by `seed`."""

    def __init__(self, folder: Path, split: str, seed: int):
        path = folder / f"wiki.{split}.raw"
        if not path.is_file():
            raise LearnerError(f"source.path: {path} does not exist (a WikiText-2 raw folder holds wiki.{{train,valid,test}}.raw)")
        articles: dict[str, list[str]] = {}
        first_id: dict[str, str] = {}
        for r in read_wikitext(path):
            key = r.title or ""
            articles.setdefault(key, []).append(r.text or "")
            first_id.setdefault(key, r.id)
        self.articles = [Document(f"wikitext2:{first_id[t]}", t or None, "\n".join(parts)) for t, parts in articles.items()]
        self.order = list(range(len(self.articles)))
        random.Random(f"wikitext2-articles-{seed}").shuffle(self.order)

    def documents(self, start: int) -> Iterator[Document]:
        for i in self.order[start:]:
            yield self.articles[i]

    def in_file_order(self) -> list[Document]:
        return list(self.articles)


class TextFolder:
    """Every `*.txt` file under `folder` (recursively), sorted by path; id = relative path."""

    def __init__(self, folder: Path):
        if not folder.is_dir():
            raise LearnerError(f"source.path: {folder} is not a folder")
        self.folder = folder
        self.files = sorted(folder.rglob("*.txt"))
        if not self.files:
            raise LearnerError(f"source.path: {folder} holds no *.txt file")

    def documents(self, start: int) -> Iterator[Document]:
        for f in self.files[start:]:
            rel = f.relative_to(self.folder).as_posix()
            yield Document(f"folder:{rel}", f.stem, f.read_text(encoding="utf-8", errors="replace"))


class JsonlDocuments:
    """One JSON object a line with a string `text` (and optional `id`, `title`)."""

    def __init__(self, path: Path):
        if not path.is_file():
            raise LearnerError(f"source.path: {path} does not exist")
        self.path = path

    def documents(self, start: int) -> Iterator[Document]:
        with self.path.open(encoding="utf-8") as f:
            n = 0
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                if n >= start:
                    yield self._document(line, line_no)
                n += 1

    def _document(self, line: str, line_no: int) -> Document:
        where = f"{self.path}:{line_no}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LearnerError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise LearnerError(f"{where}: field 'text' must be a string")
        return Document(f"jsonl:{row.get('id', line_no)}", row.get("title"), row["text"])


class WikipediaRandom:
    """Random main-namespace articles from the MediaWiki action API, as plain text."""

    def __init__(self, api_url: str, timeout_s: float, retries: int = 3):
        self.api_url, self.timeout_s, self.retries = api_url, timeout_s, retries

    def documents(self, start: int) -> Iterator[Document]:
        while True:
            for page in self.fetch():
                text = (page.get("extract") or "").strip()
                if text:
                    yield Document(f"wikipedia:{page['pageid']}", page.get("title"), text)

    def fetch(self) -> list[dict]:
        """One API call: a random article with its whole plain-text extract."""
        # Whole extracts come one page per call (exlimit > 1 needs exintro).
        query = {
            "action": "query", "format": "json", "formatversion": "2", "generator": "random",
            "grnnamespace": "0", "grnlimit": "1", "prop": "extracts", "explaintext": "1",
        }
        url = f"{self.api_url}?{urllib.parse.urlencode(query)}"
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        for attempt in range(self.retries):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    body = json.loads(response.read().decode("utf-8"))
                break
            except (OSError, json.JSONDecodeError) as e:
                if attempt == self.retries - 1:
                    raise LearnerError(f"source.api_url: {self.api_url} did not answer ({e.__class__.__name__}: {e})") from None
                time.sleep(2**attempt)
        pages = body.get("query", {}).get("pages", [])
        if isinstance(pages, dict):  # formatversion 1 keys pages by id
            pages = list(pages.values())
        if "error" in body:
            raise LearnerError(f"source.api_url: the API answered an error: {body['error']}")
        return pages
