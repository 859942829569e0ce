"""human handoff: agents, their tokens, who holds a conversation and why it was escalated

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("agent_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("escalation", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_conversations_agent_id", ["agent_id"])
        batch.create_index("ix_conversations_state", ["state"])
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("email", sa.String(length=254), nullable=False, unique=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "agent_tokens",
        sa.Column("digest", sa.String(length=64), primary_key=True),
        sa.Column("agent_id", sa.String(length=32), sa.ForeignKey("agents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_agent_tokens_agent_id", "agent_tokens", ["agent_id"])


def downgrade() -> None:
    op.drop_table("agent_tokens")
    op.drop_table("agents")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_index("ix_conversations_state")
        batch.drop_index("ix_conversations_agent_id")
        batch.drop_column("queued_at")
        batch.drop_column("escalation")
        batch.drop_column("agent_id")
