"""`collapselab report RUN`: write a run's report (Markdown + self-contained HTML with plots)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from collapselab.errors import RunError

DB_HELP = "Database URL, to find a run given by id (default: $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."


def report(
    run: Annotated[str | None, typer.Argument(help="Run directory, or a run id recorded in the database.")] = None,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for report.md, report.html and figures/ (default: <run>/report).")] = None,
    sweep: Annotated[Path | None, typer.Option(help="Instead of a run: compare the trials of the sweep in this folder (<output_dir>/sweeps/<name>).")] = None,
) -> None:
    """Write report.md and a self-contained report.html for a run, or for a sweep."""
    from collapselab.report import write_report
    from collapselab.results import resolve_run_dir
    from collapselab.sweep.report import write_sweep_report

    if (run is None) == (sweep is None):
        raise RunError("give a run, or --sweep FOLDER")
    paths = write_report(resolve_run_dir(run, db), out) if run is not None else write_sweep_report(sweep, out)
    typer.echo(f"wrote {paths.markdown} and {paths.html} ({len(paths.figures)} figures)")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
