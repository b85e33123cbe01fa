"""`collapselab run|quickstart|status`: run experiments (filled by the engine work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
