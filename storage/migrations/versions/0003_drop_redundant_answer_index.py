"""answers: drop ix_answers_invitation_id, which the (invitation_id, question_id) unique
index already covers; every stored answer paid for keeping both

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 23:58:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_answers_invitation_id", table_name="answers")


def downgrade() -> None:
    op.create_index("ix_answers_invitation_id", "answers", ["invitation_id"])
