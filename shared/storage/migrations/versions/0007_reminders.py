"""reminders: messages scheduled by custom actions (Rasa's ReminderScheduled), kept so that they
survive a restart and fire once whichever process claims them

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reminders",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "customer_id", sa.String(length=32), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("intent", sa.String(length=200), nullable=False),
        sa.Column("entities", sa.JSON(), nullable=False),
        sa.Column("kill_on_user_message", sa.Boolean(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claim", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.UniqueConstraint("customer_id", "name", name="uq_reminders_customer_name"),
    )
    op.create_index("ix_reminders_fired_due", "reminders", ["fired_at", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_reminders_fired_due", table_name="reminders")
    op.drop_table("reminders")
