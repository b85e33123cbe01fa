"""Driving the dashboard with Streamlit's AppTest: one page run, and what it shows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest

from collapselab.dashboard import APP
from collapselab.store import import_run_dir

_backend = os.environ.get("MPLBACKEND")
import streamlit.testing.v1  # noqa: E402, F401

# Importing streamlit sets MPLBACKEND=Agg in this process's environment; every subprocess a
# later test starts would inherit it (the example notebook's kernel then draws no inline
# figures). Put it back as it was.
if _backend is None:
    os.environ.pop("MPLBACKEND", None)
else:
    os.environ["MPLBACKEND"] = _backend

TIMEOUT_S = 120  # a first run imports pandas, altair, scipy and matplotlib


def fill(db: str, *runs) -> str:
    """Record the tiny runs' directories in `db` (one database holding all of them)."""
    for run in runs:
        import_run_dir(db, run.run_dir)
    return db


def page(monkeypatch: pytest.MonkeyPatch, db: str, *, expect_error: bool = False, **params: str):
    """A fresh session of the dashboard on `db`, first run with these URL query parameters;
    it raised nothing and showed no error (unless `expect_error`)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("COLLAPSELAB_DB", db)
    at = AppTest.from_file(str(Path(APP)), default_timeout=TIMEOUT_S)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    if expect_error:
        assert not at.exception, [e.value for e in at.exception]
        return at
    return checked(at)


def checked(at):
    """`at` after a run that raised nothing and showed no error."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def rerun(at):
    return checked(at.run())


def charts(at) -> list[dict]:
    """The Vega-Lite specs of the page's charts."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def titles(at) -> list[str]:
    """The charts' title texts."""
    out = []
    for spec in charts(at):
        title = spec.get("title", "")
        out.append(title["text"] if isinstance(title, dict) else title)
    return out


def legends(spec: dict) -> list[tuple[str, str, dict | None, dict]]:
    """(channel, field, legend, scale) of every colour, fill and dash encoding of a chart
    spec, its layers' included; legend is None where the encoding hides it."""
    out = []
    for part in [spec, *spec.get("layer", [])]:
        for channel in ("color", "fill", "strokeDash"):
            enc = part.get("encoding", {}).get(channel)
            if enc and "field" in enc:
                out.append((channel, enc["field"], enc.get("legend", {}), enc.get("scale", {})))
    return out


def texts(at) -> str:
    """Every markdown, caption, info and text element of the page, joined."""
    kinds = ("markdown", "caption", "info", "text", "success", "warning", "error")
    parts = [x.value for kind in kinds for x in getattr(at, kind)]
    return "\n".join(str(p) for p in parts)


def frames(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]
