"""The selection (page, run, arms, seeds, metrics, question, generation...) and the URL.

The selection lives in `st.session_state["selection"]` and in the URL query string, so a
view can be shared as a link: on a session's first run the query string fills the
selection, and every run writes the selection back. Widgets are keyed by the selection's
names and set from it on every run (see `_prepare`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

# name -> kind: how a value is spelled in the query string
PARAMS: dict[str, str] = {
    "page": "str", "experiment": "str", "run": "str", "arms": "list", "seeds": "ints",
    "metrics": "list", "show_seeds": "bool", "question": "str", "search": "str", "score": "str",
    "arm": "str", "seed": "int", "generation": "int", "order": "str", "record": "str",
    "build": "str", "reasons": "list", "compare_a": "str", "compare_b": "str", "all_keys": "bool",
    "live": "bool", "refresh": "int", "prompt": "str", "all_metrics": "bool",
}
_STATE = "selection"


def _decode(kind: str, text: str) -> Any:
    if kind == "list":
        return [x for x in text.split(",") if x]
    if kind == "ints":
        return [int(x) for x in text.split(",") if x.strip().lstrip("-").isdigit()]
    if kind == "int":
        return int(text) if text.strip().lstrip("-").isdigit() else None
    if kind == "bool":
        return text == "1"
    return text


def _encode(kind: str, value: Any) -> str:
    if kind in ("list", "ints"):
        return ",".join(str(x) for x in value)
    if kind == "bool":
        return "1" if value else "0"
    return str(value)


def selection() -> dict[str, Any]:
    """This session's selection; filled from the URL on the session's first run."""
    if _STATE not in st.session_state:
        chosen = {}
        for name, text in st.query_params.to_dict().items():
            if name in PARAMS:
                value = _decode(PARAMS[name], text)
                if value is not None:
                    chosen[name] = value
        st.session_state[_STATE] = chosen
    return st.session_state[_STATE]


def write_url() -> None:
    """Put the selection in the query string (only when it changed: each write is a message)."""
    wanted = {k: _encode(PARAMS[k], v) for k, v in selection().items() if v is not None and v != []}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def _prepare(name: str, valid: Callable[[Any], bool], default: Any) -> dict[str, Any]:
    # The selection is the truth: a user's change reaches it through the widget's on_change
    # callback (which runs before the script), and every run sets the widget from it. That
    # keeps the choice when Streamlit sees a "new" widget (its options changed: a new run
    # was recorded, a run's label changed) or forgot it (its page was left). A value that
    # is no longer valid (a run deleted, an arm this run lacks) falls back to the default.
    value = selection().get(name, default)
    st.session_state[name] = value if valid(value) else default
    return {"key": name, "on_change": _changed, "args": (name,)}


def _changed(name: str) -> None:
    selection()[name] = st.session_state[name]


def _keep(name: str, value: Any) -> Any:
    selection()[name] = value
    return value


def one(name: str, label: str, options: Sequence[Any], *, default: Any = None, where: Any = None,
        format_func: Callable[[Any], str] = str, help: str | None = None, radio: bool = False) -> Any:
    """A selectbox (or radio) bound to selection[name]; None when there are no options."""
    if not options:
        return None
    options = list(options)
    bound = _prepare(name, lambda v: v in options, default if default in options else options[0])
    widget = (where or st.sidebar).radio if radio else (where or st.sidebar).selectbox
    return _keep(name, widget(label, options, format_func=format_func, help=help, **bound))


def many(name: str, label: str, options: Sequence[Any], *, default: Sequence[Any] | None = None, where: Any = None,
         format_func: Callable[[Any], str] = str, help: str | None = None) -> list[Any]:
    """A multiselect bound to selection[name], its choice in the options' order; an empty
    choice means the default."""
    options = list(options)
    fallback = [o for o in (options if default is None else default) if o in options]
    bound = _prepare(name, lambda v: isinstance(v, list) and bool(v) and all(x in options for x in v), fallback)
    chosen = (where or st.sidebar).multiselect(label, options, format_func=format_func, help=help, **bound)
    return _keep(name, [o for o in options if o in chosen] or fallback)


def flag(name: str, label: str, *, default: bool = False, where: Any = None, toggle: bool = False,
         help: str | None = None) -> bool:
    """A checkbox (or toggle) bound to selection[name]."""
    bound = _prepare(name, lambda v: isinstance(v, bool), default)
    widget = (where or st.sidebar).toggle if toggle else (where or st.sidebar).checkbox
    return _keep(name, widget(label, help=help, **bound))


def text(name: str, label: str, *, where: Any = None, placeholder: str = "") -> str:
    """A text input bound to selection[name]."""
    bound = _prepare(name, lambda v: isinstance(v, str), "")
    return _keep(name, (where or st.sidebar).text_input(label, placeholder=placeholder, **bound))


def number(name: str, label: str, *, default: int, low: int, high: int, where: Any = None,
           help: str | None = None) -> int:
    """An integer input bound to selection[name]."""
    bound = _prepare(name, lambda v: isinstance(v, int) and low <= v <= high, default)
    return _keep(name, (where or st.sidebar).number_input(label, min_value=low, max_value=high, step=1, help=help, **bound))
