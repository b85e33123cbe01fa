"""`collapselab report RUN`: write a run's report (Markdown + self-contained HTML with plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DB_HELP = "Database URL, to find a run given by id (default: $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."


def report(
    run: Annotated[str, typer.Argument(help="Run directory, or a run id recorded in the database.")],
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for report.md, report.html and figures/ (default: <run>/report).")] = None,
) -> None:
    """Write report.md and a self-contained report.html for a run."""
    from collapselab.report import write_report
    from collapselab.report.data import ReportError, resolve_run_dir
    from collapselab.store import StoreError

    try:
        paths = write_report(resolve_run_dir(run, db), out)
    except (ReportError, StoreError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"wrote {paths.markdown} and {paths.html} ({len(paths.figures)} figures)")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
