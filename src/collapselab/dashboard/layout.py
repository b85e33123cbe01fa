"""The dashboard's frame: open the database, the sidebar (page, live refresh, experiment,
run), then the chosen page; the selection goes back into the URL at the end of each run.

Live refresh is a small fragment that reruns every few seconds and asks the database for
its data version; only when that changed does the whole app rerun (widgets keep their
state across reruns, so the selection stays). An idle page therefore redraws nothing and
costs the database two aggregate queries per interval.
"""

from __future__ import annotations

import os

import streamlit as st

from collapselab.dashboard import REFRESH_ENV
from collapselab.dashboard import selection as sel
from collapselab.dashboard.source import Source, open_source
from collapselab.dashboard.views import (
    Context,
    generations,
    progress_of,
    question,
    refinery,
    runs,
    status_of,
    synthetic,
)
from collapselab.errors import CollapselabError
from collapselab.store import StoreError, require_database, resolve_url

PAGES = {
    "runs": ("Runs", runs.render),
    "generations": ("Generations", generations.render),
    "question": ("Question", question.render),
    "synthetic": ("Synthetic data", synthetic.render),
    "refinery": ("Refinery", refinery.render),
}
ALL = "(all experiments)"
HOW_TO_CREATE = ("Create it by running an experiment: `collapselab quickstart` (or `collapselab run CONFIG`) "
                 "records every run in it; or open another database: `collapselab dashboard --db URL`.")


def main() -> None:
    """One run of the dashboard script."""

    st.set_page_config(page_title="collapselab dashboard", layout="wide")
    st.sidebar.title("collapselab")
    page = sel.one("page", "page", list(PAGES), format_func=lambda p: PAGES[p][0], radio=True)
    url = resolve_url(None)
    try:
        require_database(url)
    except StoreError as e:  # no SQLite file there yet: reading must not create it
        _watch(url, str(e))
        st.info(f"{e}. {HOW_TO_CREATE}")
        return
    try:
        source = open_source(url)
    except StoreError as e:  # e.g. a schema newer than this collapselab
        _watch(url, str(e))
        st.error(str(e))
        return
    except Exception as e:  # noqa: BLE001  (SQLAlchemy/driver errors: a server down, a bad URL)
        _watch(url, repr(e))
        st.error(f"Cannot open the results database {_shown(url)}: {e.__class__.__name__}: {str(e).splitlines()[0]}")
        return
    _watch(url, source.version)
    everything = source.runs()
    st.sidebar.caption(f"database: {_shown(url)}")
    if not everything:
        st.info(f"The results database {_shown(url)} has no runs yet. {HOW_TO_CREATE}")
        sel.write_url()
        return
    ctx = _context(source, everything, page)
    try:
        PAGES[page][1](ctx)
    except CollapselabError as e:  # a run directory moved, a config that no longer validates...
        st.error(str(e).splitlines()[0])
    sel.write_url()


def _context(source: Source, everything: list[dict], page: str) -> Context:
    experiments = sorted({r["experiment"] for r in everything})
    experiment = sel.one("experiment", "experiment", [ALL, *experiments])
    shown = [r for r in everything if experiment in (ALL, r["experiment"])]
    if page == "runs":
        return Context(source, shown, None)
    by_id = {r["run_id"]: r for r in shown}
    newest_first = [r["run_id"] for r in reversed(shown)]
    run_id = sel.one("run", "run", newest_first,
                     format_func=lambda i: f"{i} · {by_id[i]['experiment']} · {status_of(by_id[i])} {progress_of(by_id[i])}")
    return Context(source, shown, by_id[run_id])


def _watch(url: str, seen: object) -> None:
    """Live refresh: rerun the app when the database changed (or appeared) since `seen`."""
    default = int(os.environ.get(REFRESH_ENV, "5"))
    live = sel.flag("live", "live refresh", default=default > 0, toggle=True,
                    help="Redraw when the engine records something new; the selection stays.")
    if not live:
        return
    every = sel.number("refresh", "every (seconds)", default=max(1, default), low=1, high=3600)

    @st.fragment(run_every=every)
    def watch() -> None:
        try:
            now: object = open_source(url).version
        except Exception as e:  # noqa: BLE001  (still missing or down: compare the error)
            now = str(e) if isinstance(e, CollapselabError) else repr(e)
        if now != seen:
            st.rerun()

    with st.sidebar:
        watch()


def _shown(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)
