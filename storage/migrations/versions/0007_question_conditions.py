"""questions.relevant and questions.constraint_message: branching and a form's own wording

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 13:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.add_column(sa.Column("relevant", sa.Text(), nullable=True))
        batch.add_column(sa.Column("constraint_message", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("questions") as batch:
        batch.drop_column("constraint_message")
        batch.drop_column("relevant")
