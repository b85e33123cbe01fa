"""The dashboard: a Streamlit app on the results database (`collapselab dashboard`).

Pages: Runs, Generations, Question, Synthetic data, Refinery (`views/`). It reads only
the store's query layer (`collapselab.store.Store`, through the cached reads of
`source.py`), never a run directory directly and never the running engine; the selection
lives in the URL's query string (`selection.py`). Importing this package does not import
Streamlit: `serve` starts it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
REFRESH_ENV = "COLLAPSELAB_DASHBOARD_REFRESH"  # seconds between live refreshes; 0 starts with it off


def streamlit_command(port: int, host: str) -> list[str]:
    """The `streamlit run` command line that serves the dashboard, offline and headless."""
    return [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.address", host, "--server.headless", "true",
        # offline: no usage statistics, no version check; no file watcher (nothing to reload)
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--global.developmentMode", "false", "--client.toolbarMode", "minimal",
    ]


def serve(db_url: str, *, port: int, host: str, refresh: int) -> None:
    """Replace this process by the Streamlit server of the dashboard on `db_url` (never returns)."""
    from collapselab.store.db import ENV_VAR

    # The URL travels in the environment, not argv: a password stays out of `ps`.
    env = {**os.environ, ENV_VAR: db_url, REFRESH_ENV: str(refresh)}
    command = streamlit_command(port, host)
    os.execve(command[0], command, env)
