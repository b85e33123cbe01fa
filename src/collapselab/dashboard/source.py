"""Everything the dashboard reads, through the store's query layer only, cached.

Each script run asks the database for its `data_version` (two aggregate queries on small
tables) and passes it to every cached read: a page shows new rows the moment they are
recorded, and an idle page costs the database nothing more. The TTL bounds how long an
unchanged answer is kept in memory. Every read is one short read transaction (the store's
`read_transaction`), so the engine writing the same SQLite file is never blocked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import streamlit as st

from collapselab.results import run_from_store, sequence_perplexities
from collapselab.store import Store

TTL_S = 30
ENTRIES = 256


@st.cache_resource(show_spinner=False)
def _store(url: str) -> Store:
    # One engine (connection pool) per database for every session of this server.
    return Store(url)


def open_source(url: str) -> Source:
    """The database at `url`, with its current data version (raises StoreError)."""
    return Source(url, _store(url).data_version())


@dataclass(frozen=True, slots=True)
class Source:
    """One database at one data version; every method is a cached read."""

    url: str
    version: tuple[Any, ...]

    def runs(self) -> list[dict[str, Any]]:
        return _runs(self.url, self.version)

    def run(self, run_id: str) -> dict[str, Any]:
        return _run(self.url, self.version, run_id)

    def metrics(self, run_id: str) -> list[dict[str, Any]]:
        return _metrics(self.url, self.version, run_id)

    def questions(self, run_id: str) -> list[dict[str, Any]]:
        return _questions(self.url, self.version, run_id)

    def question(self, run_id: str, example_id: str) -> dict[str, Any]:
        return _question(self.url, self.version, run_id, example_id)

    def documents(self, run_id: str) -> list[dict[str, Any]]:
        return _documents(self.url, self.version, run_id)

    def records(self, run_id: str, arm: str, seed: int, generation: int, kind: str) -> list[dict[str, Any]]:
        return _records(self.url, self.version, run_id, arm, seed, generation, kind)

    def data_files(self, run_id: str) -> list[dict[str, Any]]:
        return _data_files(self.url, self.version, run_id)

    def perplexities(self, run_id: str, arm: str) -> dict[tuple[int, int], dict[str, float]]:
        return _perplexities(self.url, self.version, run_id, arm)

    def criteria(self, run_id: str) -> Any:
        return _criteria(self.url, self.version, run_id)


def _cached(fn):  # noqa: ANN001, ANN202  (a decorator: the cached function keeps its signature)
    return st.cache_data(ttl=TTL_S, max_entries=ENTRIES, show_spinner=False)(fn)


@_cached
def _runs(url: str, version: tuple) -> list[dict[str, Any]]:
    return _store(url).list_runs()


@_cached
def _run(url: str, version: tuple, run_id: str) -> dict[str, Any]:
    return _store(url).run(run_id)


@_cached
def _metrics(url: str, version: tuple, run_id: str) -> list[dict[str, Any]]:
    return _store(url).metrics(run_id, details=False)


@_cached
def _questions(url: str, version: tuple, run_id: str) -> list[dict[str, Any]]:
    return _store(url).questions(run_id)


@_cached
def _question(url: str, version: tuple, run_id: str, example_id: str) -> dict[str, Any]:
    return _store(url).question_history(run_id, example_id)


@_cached
def _documents(url: str, version: tuple, run_id: str) -> list[dict[str, Any]]:
    return _store(url).documents(run_id)


@_cached
def _records(url: str, version: tuple, run_id: str, arm: str, seed: int, generation: int, kind: str) -> list[dict[str, Any]]:
    return [r.to_dict() for r in _store(url).records(run_id, arm, seed, generation, kind)]


@_cached
def _data_files(url: str, version: tuple, run_id: str) -> list[dict[str, Any]]:
    return _store(url).data_files(run_id)


@_cached
def _perplexities(url: str, version: tuple, run_id: str, arm: str) -> dict[tuple[int, int], dict[str, float]]:
    """(seed, generation) -> record id -> per-sequence perplexity under the generation-0
    model of what `arm` wrote, for every generation that kept them (`collapselab.results`)."""

    run = run_from_store(_store(url), run_id)
    out = {}
    for g in run.gens:
        if g.arm == arm and (values := sequence_perplexities(run, g)):
            out[(g.seed, g.generation)] = values
    return out


@_cached
def _criteria(url: str, version: tuple, run_id: str) -> Any:
    """The three-arm success criteria (report/criteria.py) of a run, None when it has not the
    three arms; built from the database like the report builds it from the run directory."""
    from collapselab.report.criteria import three_arm_criteria

    run = run_from_store(_store(url), run_id)
    if run.three_arm is None:
        return None
    return run.three_arm, three_arm_criteria(run)
