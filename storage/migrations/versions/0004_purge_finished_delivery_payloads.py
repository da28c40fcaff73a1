"""deliveries: purge the payloads of finished deliveries (sent, failed, unreachable,
cancelled), which kept every digest's text and file, quotes included, after delivery; from
now on the outbox purges each one as it finishes (bot.outbox.payloads.PURGED)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-12 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As the models' JSON payload column, and bot.outbox.payloads.PURGED (a migration keeps its
# own copy: it must mean the same whatever the code says later).
DELIVERIES = sa.table(
    "deliveries", sa.column("status", sa.String()), sa.column("payload", sa.JSON())
)
FINISHED = ("sent", "failed", "unreachable", "cancelled")
PURGED = {"purged": True}


def upgrade() -> None:
    op.execute(DELIVERIES.update().where(DELIVERIES.c.status.in_(FINISHED)).values(payload=PURGED))


def downgrade() -> None:
    # Nothing to undo in the schema, and what was purged cannot be restored: the messages'
    # text is gone, which is the point.
    pass
