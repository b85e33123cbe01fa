"""Keep each generation's metrics.json verbatim beside its columns.

The engine adds fields the schema has no column for (e.g. `sizes.train_synthetic_share`,
`copied_from`); storing the document keeps them, and the export writes it back whole.
Generations recorded earlier get NULL; the export rebuilds their document from columns.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def upgrade(conn: Connection) -> None:
    conn.execute(sa.text("ALTER TABLE generations ADD COLUMN metrics_json TEXT"))
