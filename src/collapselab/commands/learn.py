"""`collapselab learn CONFIG`: the continuous learner (documents in, checkpoints out)."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer


def learn(
    config: Path = typer.Argument(..., help="Learner YAML (see configs/learn-*.yaml)."),
    set_: list[str] = typer.Option(None, "--set", help="Override a config value: key.path=value (repeatable), e.g. --set learner.steps=20."),
    fresh: bool = typer.Option(False, "--fresh", help="Start a new learner run instead of continuing the latest one."),
    db: str = typer.Option(None, "--db", help="Results database URL (default $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."),
) -> None:
    """Fine-tune on a stream of documents, publishing a checkpoint every N of them; SIGTERM stops after the current step."""

    from collapselab.learner import load_learner_config, run_learner

    stop = threading.Event()

    def on_term(signum, frame) -> None:
        typer.echo("learner: SIGTERM received; stopping after the current step", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    # Named errors reach the CLI's one handler (one line, their exit code).
    cfg = load_learner_config(config, set_ or [])
    run_dir = run_learner(cfg, fresh=fresh, db_url=db, stop=stop, report=typer.echo)
    typer.echo(f"learner stopped; run {run_dir}")


def register(app: typer.Typer) -> None:
    app.command()(learn)
