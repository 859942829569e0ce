"""when a person took each conversation (measured wait estimates, reports), and the queue place
the customer was last told (shared by every process)

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("position_told", sa.Integer(), nullable=True))
        batch.create_index("ix_conversations_queue_closed", ["queue", "closed_at"])


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_queue_closed")
        batch.drop_column("position_told")
        batch.drop_column("assigned_at")
