"""customers across channels: link codes, links (undoable), profile metadata, erasure

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("attribute_meta", sa.JSON(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("merged_into", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("link_failures", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("link_locked_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("identity", sa.String(length=128), nullable=True))
    op.create_table(
        "link_codes",
        sa.Column("digest", sa.String(length=64), primary_key=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "customer_id", sa.String(length=32), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_link_codes_customer_id", "link_codes", ["customer_id"])
    op.create_index("ix_link_codes_identity", "link_codes", ["channel", "external_id", "created_at"])
    with op.batch_alter_table("customers") as batch:
        batch.create_index("ix_customers_merged_into", ["merged_into"])
    op.create_table(
        "links",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column(
            "survivor_id", sa.String(length=32), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("merged_id", sa.String(length=32), sa.ForeignKey("customers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("undone_by", sa.String(length=200), nullable=True),
    )
    op.create_index("ix_links_survivor_id", "links", ["survivor_id"])
    op.create_index("ix_links_merged_id", "links", ["merged_id"])


def downgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.drop_index("ix_customers_merged_into")
    op.drop_table("links")
    op.drop_table("link_codes")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("identity")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("link_locked_until")
        batch.drop_column("link_failures")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("erased_at")
        batch.drop_column("merged_into")
        batch.drop_column("attribute_meta")
