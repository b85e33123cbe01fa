"""`collapselab runs [delete RUN | prune]`: every run on disk or in the database, deleting one whole, pruning leftovers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from collapselab.commands.results import DB_HELP

runs_app = typer.Typer(help="List runs (directory and database); `delete` removes one whole, `prune` removes leftovers.",
                       invoke_without_command=True)

ROOT_HELP = "A folder of experiments' runs to look in besides those the database names (default: runs)."


@runs_app.callback()
def runs(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    root: Annotated[list[Path] | None, typer.Option("--root", help=ROOT_HELP)] = None,
) -> None:
    """List every run: experiment, status, generations done, size on disk, whether the database records it."""
    if ctx.invoked_subcommand is not None:
        return
    from collapselab.store.db import shown_url
    from collapselab.store.housekeeping import find_runs

    places = find_runs(db, root or [Path("runs")])
    if not places:
        typer.echo(f"no runs in {shown_url(db)} or under {', '.join(map(str, root or [Path('runs')]))}")
        return
    header = ("run", "experiment", "status", "generations", "size", "database", "directory")
    table = [header]
    for p in places:
        expected = "" if p.generations_expected is None else f"/{p.generations_expected}"
        table.append((p.run_id, p.experiment or "?", p.status or ("" if p.recorded else "-"), f"{p.generations_done}{expected}",
                      size_text(p.size_bytes), "recorded" if p.recorded else "not recorded",
                      _shown_path(p.run_dir) if p.run_dir is not None else "(missing)"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    typer.echo(f"database: {shown_url(db)}")


@runs_app.command("delete")
def delete(
    run: Annotated[str, typer.Argument(help="Run id or run directory.", metavar="RUN")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking (for scripts).")] = False,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    root: Annotated[list[Path] | None, typer.Option("--root", help=ROOT_HELP)] = None,
) -> None:
    """Delete a run: its directory and its database rows together (asks first; refused while a process writes it)."""
    from collapselab.store import housekeeping

    place = housekeeping.find_run(db, run, root or [Path("runs")])
    what = [f"directory {_shown_path(place.run_dir)} ({size_text(place.size_bytes)})"] if place.run_dir is not None else []
    what += ["its database rows"] if place.recorded else []
    if not yes and not _confirm(f"delete run {place.run_id} ({place.experiment}): {' and '.join(what)}?"):
        typer.echo(f"run {place.run_id} not deleted", err=True)
        raise typer.Exit(1)
    housekeeping.delete(db, place)
    typer.echo(f"deleted run {place.run_id}: {' and '.join(what)}")


@runs_app.command("prune")
def prune(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Remove without asking (for scripts).")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be removed.")] = False,
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    root: Annotated[list[Path] | None, typer.Option("--root", help=ROOT_HELP)] = None,
) -> None:
    """Remove superseded generations, half-written leftovers of killed runs, and runs that failed before finishing a generation."""
    from collapselab.store import housekeeping

    roots = root or [Path("runs")]
    found = housekeeping.prune(db, roots, apply=False)
    if not found.paths and not found.runs:
        typer.echo("nothing to prune")
        return
    for place in found.runs:
        typer.echo(f"failed run, no generation finished: {place.describe()}")
    for path in found.paths:
        typer.echo(f"leftover: {_shown_path(path)}")
    total = size_text(found.size_bytes)
    if dry_run:
        typer.echo(f"would free {total}")
        return
    if not yes and not _confirm(f"remove these ({total})?"):
        typer.echo("nothing removed", err=True)
        raise typer.Exit(1)
    done = housekeeping.prune(db, roots, apply=True)
    for line in done.skipped:
        typer.echo(f"left alone: {line}", err=True)
    typer.echo(f"removed {len(done.runs)} run(s) and {len(done.paths)} leftover(s), {size_text(done.size_bytes)}")


def _confirm(question: str) -> bool:
    """Ask on the terminal; no answer (end of input, a script's closed stdin) is no."""
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:
        typer.echo("", err=True)
        return False


def size_text(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _shown_path(path: Path) -> str:
    """A path relative to the working folder when it lies under it (shorter to read)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")
