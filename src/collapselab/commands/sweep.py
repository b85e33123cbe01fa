"""`collapselab sweep CONFIG --grid KEY=V1,V2`: run a grid of overrides as trials on Ray."""

from __future__ import annotations

from typing import Annotated

import typer

from collapselab.errors import EXIT_FAILED

GRID_HELP = ("A grid key and its values, KEY=V1,V2,... (repeatable; values read as YAML, commas inside [] do not split), "
             "e.g. --grid arms.0.ratio=0.25,0.75 --grid experiment.seeds=[0],[1]. Adds to or replaces sweep.grid.")


def sweep(
    config: Annotated[str, typer.Argument(help="Experiment YAML, or a ready config's name (the base every trial varies).")],
    grid: Annotated[list[str] | None, typer.Option("--grid", help=GRID_HELP)] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override a base config value: key.path=value (repeatable).")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default sweep.address, else a local Ray on this machine).")] = None,
    name: Annotated[str | None, typer.Option(help="Sweep name (default sweep.name, else <experiment>-<hash of the base config>).")] = None,
    db: Annotated[str | None, typer.Option(help="Results database URL (default $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db).")] = None,
) -> None:
    """Run every grid point as its own run on Ray; again to continue what is unfinished."""
    from collapselab.config import load_config
    from collapselab.config.files import resolve_config
    from collapselab.store import connect
    from collapselab.sweep.compare import comparison_rows, from_folder
    from collapselab.sweep.plan import plan_sweep
    from collapselab.sweep.report import write_sweep_report
    from collapselab.sweep.runner import run_sweep

    # Named errors reach the CLI's one handler (one line, their exit code).
    plan = plan_sweep(load_config(resolve_config(config), set_ or []), grid or [], name)
    connect(db).dispose()  # a database that cannot be used fails now, in one line, before any trial starts
    outcome = run_sweep(plan, address=address, db_url=db, say=typer.echo)
    trials = from_folder(plan.folder)
    _print_table(comparison_rows(trials), f"sweep {plan.name}: final generation of each trial")
    if any(t.final for t in trials):
        paths = write_sweep_report(plan.folder)
        typer.echo(f"wrote {paths.markdown} and {paths.html}")
    for run_id, error in outcome.failed.items():
        typer.echo(f"failed: {run_id}: {error}", err=True)
    if outcome.failed:
        raise typer.Exit(EXIT_FAILED)


def _print_table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console = console if console.is_terminal else Console(width=240)  # no squeezing into a log file
    table = Table(title=title)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    for c in columns:
        table.add_column(c)
    for r in rows:
        table.add_row(*("" if r[c] is None else f"{r[c]:.4g}" if isinstance(r[c], float) else str(r[c]) for c in columns))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("sweep")(sweep)
