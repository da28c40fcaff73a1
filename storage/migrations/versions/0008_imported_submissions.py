"""invitations: anonymous imported submissions (no participant), their channel and key

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 10:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite this copies the table (batch mode); storage.migrate runs migrations with
    # foreign keys unenforced, so dropping the old copy does not cascade to the answers.
    with op.batch_alter_table("invitations") as batch:
        batch.alter_column("participant_id", existing_type=sa.Integer(), nullable=True)
        batch.add_column(
            sa.Column("channel", sa.String(length=20), server_default="chat", nullable=False)
        )
        batch.add_column(sa.Column("submission_key", sa.String(length=100), nullable=True))
        batch.create_unique_constraint(
            "uq_invitations_round_id_submission_key", ["round_id", "submission_key"]
        )


def downgrade() -> None:
    # Imported submissions have no participant, which the older schema cannot hold: they go,
    # with their answers (said one table at a time: foreign keys are not enforced here).
    anonymous = "SELECT id FROM invitations WHERE participant_id IS NULL"
    answers = f"SELECT id FROM answers WHERE invitation_id IN ({anonymous})"
    for table in ("answer_reviews", "answer_codes", "answer_choices"):
        op.execute(f"DELETE FROM {table} WHERE answer_id IN ({answers})")
    op.execute(f"DELETE FROM answers WHERE invitation_id IN ({anonymous})")
    op.execute(f"DELETE FROM deliveries WHERE invitation_id IN ({anonymous})")
    op.execute("DELETE FROM invitations WHERE participant_id IS NULL")
    with op.batch_alter_table("invitations") as batch:
        batch.drop_constraint("uq_invitations_round_id_submission_key", type_="unique")
        batch.drop_column("submission_key")
        batch.drop_column("channel")
        batch.alter_column("participant_id", existing_type=sa.Integer(), nullable=False)
