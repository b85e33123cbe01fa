"""`collapselab run | quickstart | status`: run experiments and look at their state."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from collapselab import api


def _console():
    """A console that does not squeeze tables to 80 columns when output goes to a file."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


def _run(config: str, overrides: list[str] | None, fresh: bool, run_id: str | None, restart_from: int | None, db: str | None) -> Path:
    """`collapselab.run` with a table printed as each generation ends.

    Named errors (bad config, data, run directory, model, database) reach the CLI's one
    handler, which prints them as one line with their exit code.
    """
    from collapselab.rundir.summary import generation_rows, table
    from collapselab.store import DatabaseUnreachable, connect
    from collapselab.training import distributed

    if distributed.start():  # torchrun / accelerate rank > 0: only rank 0's training steps run here
        distributed.serve()
        raise typer.Exit(0)
    console = _console()
    connect(db).dispose()  # an unreachable database fails now, not after the data is prepared

    def show(event) -> None:
        from collapselab.lab.events import GenerationFinished, Message

        if isinstance(event, GenerationFinished):
            rows = [r for r in generation_rows(event.run_dir) if (r["arm"], r["seed"], r["generation"]) == (event.arm, event.seed, event.generation)]
            console.print(table(rows, f"{event.run_dir.parent.name}: {event.arm} generation {event.generation} (seed {event.seed})"))
        elif isinstance(event, Message):
            console.print(event.text)

    try:
        run_dir = api.run(config, overrides or [], fresh=fresh, db=db, run_id=run_id, restart_from_generation=restart_from, listeners=[show]).run_dir
    except DatabaseUnreachable as e:
        # Raised between generations too: say that nothing already produced is lost.
        raise DatabaseUnreachable(f"{e}; every finished generation stays in the run directory and is recorded when the run is continued") from None
    # The other ranks, if any, go home. After a failure they are not told (they may be inside
    # a collective rank 0 never reaches): rank 0 exits non-zero and torchrun stops them.
    distributed.stop()
    console.print(table(generation_rows(run_dir), f"{run_dir.parent.name}: all generations ({run_dir})"))
    return run_dir


SET_HELP = "Override a config value: key.path=value (repeatable), e.g. --set experiment.generations=2."


def run(
    config: str = typer.Argument(..., help="Experiment YAML, or the name of a ready config (quickstart, shumailov-wikitext2, ...: see configs/)."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new run instead of continuing the latest one."),
    run_id: str = typer.Option(None, "--run-id", help="Continue (or create) this run id."),
    restart_from_generation: int = typer.Option(None, "--restart-from-generation", help="Redo generation G and later (old ones are moved aside, not deleted)."),
    db: str = typer.Option(None, "--db", help="Results database URL (default $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."),
) -> None:
    """Run an experiment, or continue it from its first unfinished step."""
    _run(config, set_, fresh, run_id, restart_from_generation, db)


def quickstart(
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new run instead of continuing the latest one."),
    db: str = typer.Option(None, "--db", help="Results database URL."),
) -> None:
    """Run the ready quickstart config: language modelling on real human text, replace vs accumulate vs ratio."""

    t0 = time.perf_counter()
    run_dir = _run("quickstart", set_, fresh, None, None, db)
    from collapselab.rundir.quickstart import explain

    explain(run_dir)
    typer.echo(f"quickstart finished in {time.perf_counter() - t0:.0f} s; results in {run_dir}")


def status(run: Path = typer.Argument(..., help="Run directory (runs/<experiment>/<run_id>).")) -> None:
    """Show which generations of a run are done, partial or pending."""
    from collapselab.rundir.folders import RunError
    from collapselab.rundir.summary import generation_rows, table

    if not (run / "config.yaml").exists():
        raise RunError(f"{run}: not a run directory (no config.yaml)")
    rows = generation_rows(run)
    _console().print(table(rows, str(run)))
    done = sum(r["status"] == "done" for r in rows)
    typer.echo(f"{done}/{len(rows)} generations done")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(quickstart)
    app.command()(status)


