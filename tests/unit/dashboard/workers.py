"""The writer process of the live test: records generations while the dashboard reads.

It writes a JSON report instead of raising, so the test can show what went wrong here.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from unit.store.run_factory import write_generation

from collapselab.store import record_generation


def writer(db_url: str, run_dir: str, arms: list[str], generations: int, attempts: int, report: str) -> None:
    """Record generations 1..generations-1 of every arm, each `attempts` times (a redo
    replaces the rows), pausing a little between them as a real run does."""
    out = {"records": 0, "error": None}
    try:
        for g in range(1, generations):
            for attempt in range(attempts):
                for arm in arms:
                    write_generation(Path(run_dir), arm, 0, g, examples=20, attempt=attempt)
                    record_generation(db_url, Path(run_dir), arm, 0, g)
                    out["records"] += 1
                time.sleep(0.2)
    except Exception:
        out["error"] = traceback.format_exc()  # e.g. "database is locked"
    Path(report).write_text(json.dumps(out))
