"""The results database: runs, arms, generations, metrics, predictions, refinery statistics.

SQLite embedded by default (`sqlite:///runs/collapselab.db`, WAL mode), PostgreSQL (or any
SQLAlchemy URL) by `--db URL` or `$COLLAPSELAB_DB`. The engine writes with `record_run`,
`record_run_status` and `record_generation`; the report, dashboard and servers read
through `Store`. Bulk data stays in Parquet in the run directory; the database indexes it
by path and content hash.

Importing this package is cheap: pyarrow and pandas are imported only by the calls that
read or write Parquet.
"""

from __future__ import annotations

from collapselab.store.db import (
    DEFAULT_URL,
    DatabaseUnreachable,
    StoreError,
    connect,
    require_database,
    resolve_url,
    shown_url,
)
from collapselab.store.queries import Store
from collapselab.store.record import (
    forget_generations,
    import_run_dir,
    record_generation,
    record_run,
    record_run_status,
)
from collapselab.store.transfer import export_run, import_export

__all__ = [
    "DEFAULT_URL",
    "DatabaseUnreachable",
    "Store",
    "StoreError",
    "connect",
    "export_run",
    "forget_generations",
    "import_export",
    "import_run_dir",
    "record_generation",
    "record_run",
    "record_run_status",
    "require_database",
    "resolve_url",
    "shown_url",
]
