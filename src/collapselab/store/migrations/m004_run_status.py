"""Run status (running / done / failed, with the error line), the generations a run plans,
and the run directory it was recorded from.

Runs recorded earlier have NULL in every new column until the engine touches them again
(any `collapselab run` of the run records them); readers say "not recorded".
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

COLUMNS = (
    "status VARCHAR(16)",  # running, done or failed
    "status_at VARCHAR(64)",  # when the status was last recorded (UTC, ISO 8601)
    "error TEXT",  # one line, for a failed run
    "generations_planned INTEGER",  # G: experiment.generations of the config
    "run_dir TEXT",  # absolute path of the run directory when it was recorded
)


def upgrade(conn: Connection) -> None:
    # One column per statement: SQLite's ALTER TABLE adds one at a time.
    for column in COLUMNS:
        conn.execute(sa.text(f"ALTER TABLE runs ADD COLUMN {column}"))
