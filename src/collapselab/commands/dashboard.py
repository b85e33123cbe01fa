"""`collapselab dashboard`: browse every run, arm, generation and question in a browser."""

from __future__ import annotations

from typing import Annotated

import typer

DB_HELP = "Database URL (default: $COLLAPSELAB_DB, else sqlite:///runs/collapselab.db)."


def dashboard(
    db: Annotated[str | None, typer.Option(help=DB_HELP)] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    refresh: Annotated[int, typer.Option(min=0, max=3600, help="Seconds between live refreshes; 0 starts with live refresh off (the page has a switch).")] = 5,
) -> None:
    """Open the dashboard (Streamlit) on the results database."""
    from collapselab.dashboard import serve
    from collapselab.store import resolve_url, shown_url

    url, shown = resolve_url(db), shown_url(db)  # a URL that does not parse fails here, in one line
    typer.echo(f"dashboard of {shown} on http://{host}:{port}", err=True)
    serve(url, port=port, host=host, refresh=refresh)


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
