"""inbox: an index on the rows not done, by chat and id, for the per-chat ordering reads of
shared/storage/inbox.py (the earliest unfinished row of a chat, the rows ahead of one) so they do not
scan every unfinished row of the channel; partial (done rows, nearly all of them, are left out)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PENDING = sa.text("done_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_inbox_chat_pending",
        "inbox",
        ["channel", "chat", "id"],
        postgresql_where=PENDING,
        sqlite_where=PENDING,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_chat_pending", table_name="inbox")
