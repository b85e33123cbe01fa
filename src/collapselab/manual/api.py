"""The API reference page (docs/api.md), generated from the public names' signatures and
docstrings; a test keeps the committed page equal to this output.

    python -m collapselab.manual.api > docs/api.md
"""

from __future__ import annotations

import inspect

import collapselab
from collapselab import api


def api_markdown() -> str:
    """docs/api.md: every public name of `collapselab` with its signature and docstring."""

    out = ["# collapselab Python API", "", "Generated from the docstrings (`python -m collapselab.manual.api > docs/api.md`).",
           "", inspect.getdoc(api) or "", ""]
    for name in ("run", "load_run", "runs"):
        fn = getattr(collapselab, name)
        out += [f"## `collapselab.{name}{inspect.signature(fn)}`", "", inspect.getdoc(fn) or "", ""]
    out += ["## `collapselab.Run`", "", inspect.getdoc(api.Run) or "", ""]
    for name, member in inspect.getmembers(api.Run):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            out += [f"### `Run.{name}` (property)", "", inspect.getdoc(member) or "", ""]
        elif inspect.isfunction(member):
            out += [f"### `Run.{name}{inspect.signature(member)}`", "", inspect.getdoc(member) or "", ""]
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    print(api_markdown(), end="")
