"""`collapselab run | quickstart | status`: run experiments and look at their state."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from collapselab import api, textio
from collapselab.errors import Interrupted


def _console():
    """A console that does not squeeze tables to 80 columns when output goes to a file."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=200)


@contextmanager
def _output(quiet: bool) -> Iterator[None]:
    """While a run runs: progress as `textio.progress_mode` says (none with `--quiet`), no
    progress bars of the libraries underneath (transformers draws one per model load and
    save, several per generation), and SIGTERM stopping the run as Ctrl-C does (the engine
    records it `interrupted`). The libraries read the environment; it is put back afterwards."""
    mode = "off" if quiet else textio.progress_mode()  # an unknown $COLLAPSELAB_PROGRESS fails here
    settings = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", textio.PROGRESS_ENV: mode}  # transformers' "Loading weights", "Writing model shards"
    if mode != "bar":
        settings["TQDM_DISABLE"] = "1"  # any other library's tqdm (the GGUF conversion) in a log file
    before = {k: os.environ.get(k) for k in settings}
    os.environ.update(settings)
    # transformers reads the variable once, at import: where it was imported before this run
    # (a notebook, a test session), only its own switch turns its bars off
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        if bars_were_on:
            hf_logging.enable_progress_bar()
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _stop_on_sigterm(number: int, _frame: object) -> None:
    """SIGTERM ends a run as Ctrl-C does: the engine records it `interrupted`."""
    raise Interrupted(number, signal.Signals(number).name)


def _run(config: str, overrides: list[str] | None, fresh: bool, run_id: str | None, restart_from: int | None, db: str | None,
         quiet: bool) -> Path:
    """`collapselab.run` with a table printed as each generation ends.

    Named errors (bad config, data, run directory, model, database) reach the CLI's one
    handler, which prints them as one line with their exit code.
    """
    from collapselab.config.files import resolve_config
    from collapselab.rundir.summary import generation_rows, table
    from collapselab.store import DatabaseUnreachable, connect
    from collapselab.training import distributed

    if distributed.start():  # torchrun / accelerate rank > 0: only rank 0's training steps run here
        distributed.serve()
        raise typer.Exit(0)
    console = _console()
    resolved = resolve_config(config).resolve()  # which file runs, said once the run starts
    connect(db).dispose()  # an unreachable database fails now, not after the data is prepared

    def show(event) -> None:
        from collapselab.lab.events import GenerationFinished, Message, RunStarted

        if isinstance(event, RunStarted):
            console.print(f"config {resolved}")
            console.print(f"{'resuming' if event.resumed else 'starting'} {event.experiment}/{event.run_id}: {event.parameters()}")
        elif isinstance(event, GenerationFinished):
            rows = [r for r in generation_rows(event.run_dir) if (r["arm"], r["seed"], r["generation"]) == (event.arm, event.seed, event.generation)]
            console.print(table(rows, f"{event.run_dir.parent.name}: {event.arm} generation {event.generation} (seed {event.seed})"))
        elif isinstance(event, Message):
            console.print(event.text)

    try:
        with _output(quiet):
            run_dir = api.run(config, overrides or [], fresh=fresh, db=db, run_id=run_id, restart_from_generation=restart_from, listeners=[show]).run_dir
    except DatabaseUnreachable as e:
        # Raised between generations too: say that nothing already produced is lost.
        raise DatabaseUnreachable(f"{e}; every finished generation stays in the run directory and is recorded when the run is continued") from None
    # The other ranks, if any, go home. After a failure they are not told (they may be inside
    # a collective rank 0 never reaches): rank 0 exits non-zero and torchrun stops them.
    distributed.stop()
    console.print(table(generation_rows(run_dir), f"{run_dir.parent.name}: all generations ({run_dir})"))
    return run_dir


def next_steps(run_dir: Path, db: str | None) -> str:
    """The closing lines of a run: where it is, and the three commands that read it."""
    shown = str(run_dir)
    with_db = f" --db {db}" if db else ""
    commands = [
        (f"collapselab results {shown}{with_db}", "headline metrics, arms side by side"),
        (f"collapselab report {shown}{with_db}", "report.html with every figure"),
        (f"collapselab dashboard{with_db}", "every run in the browser"),
    ]
    width = max(len(c) for c, _ in commands)
    return "\n".join([f"run directory: {shown}", "next:", *(f"  {c.ljust(width)}  # {why}" for c, why in commands)])


SET_HELP = "Override a config value: key.path=value (repeatable), e.g. --set experiment.generations=2."
QUIET_HELP = "No progress bars or progress lines (the tables stay). Without it: a bar on a terminal, a line every 30 s in a log."
DB_HELP = "Results database URL (default $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."


def run(
    config: str = typer.Argument(..., help="Experiment YAML file, or the name of a ready config (quickstart, shumailov-wikitext2, ...: see configs/)."),
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new run instead of continuing the latest one."),
    run_id: str = typer.Option(None, "--run-id", help="Continue (or create) this run id."),
    restart_from_generation: int = typer.Option(None, "--restart-from-generation", help="Redo generation G and later (old ones are moved aside, not deleted)."),
    db: str = typer.Option(None, "--db", help=DB_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Run an experiment, or continue it from its first unfinished step."""
    run_dir = _run(config, set_, fresh, run_id, restart_from_generation, db, quiet)
    typer.echo(next_steps(run_dir, db))


def quickstart(
    set_: list[str] = typer.Option(None, "--set", help=SET_HELP),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new run instead of continuing the latest one."),
    db: str = typer.Option(None, "--db", help="Results database URL."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help=QUIET_HELP),
) -> None:
    """Run the ready quickstart config: language modelling on real human text, replace vs accumulate vs ratio."""

    t0 = time.perf_counter()
    run_dir = _run("quickstart", set_, fresh, None, None, db, quiet)
    from collapselab.rundir.quickstart import explain

    explain(run_dir)
    typer.echo(f"quickstart finished in {time.perf_counter() - t0:.0f} s")
    typer.echo(next_steps(run_dir, db))


def status(
    run: str = typer.Argument(..., help="Run directory (runs/<experiment>/<run_id>), or a run id recorded in the database."),
    db: str = typer.Option(None, "--db", help=DB_HELP + " Read for a run id, or when given: the status the run last recorded."),
) -> None:
    """Show which generations of a run are done, partial or pending, and how the run last ended."""
    from collapselab.results import resolve_run_dir
    from collapselab.rundir.folders import RunError
    from collapselab.rundir.summary import generation_rows, table

    named_by_folder = Path(run).is_dir()
    if named_by_folder and not (Path(run) / "config.yaml").exists():
        raise RunError(f"{run}: not a run directory (no config.yaml)")
    run_dir = Path(run) if named_by_folder else resolve_run_dir(run, db)
    rows = generation_rows(run_dir)
    _console().print(table(rows, str(run_dir)))
    done = sum(r["status"] == "done" for r in rows)
    typer.echo(f"{done}/{len(rows)} generations done")
    if db is not None or not named_by_folder:
        typer.echo(_recorded_status(run_dir, db))


def _recorded_status(run_dir: Path, db: str | None) -> str:
    """The run's status as the engine last recorded it in the database."""
    from collapselab.store import Store

    with Store(db) as store:
        row = store.run(store.resolve_run(run_dir))
    if row["status"] is None:
        return "recorded status: none (recorded before the database kept one)"
    when = (row["status_at"] or "")[:19].replace("T", " ")
    error = f": {row['error']}" if row["error"] else ""
    return f"recorded status: {row['status']} at {when} UTC{error}"


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(quickstart)
    app.command()(status)
