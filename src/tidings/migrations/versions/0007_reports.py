"""Delivery reports: rejected reports are counted; messages are found by provider id.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "rejected_reports",
        sa.Column("id", ID, primary_key=True),
        sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE")),
        sa.Column("connection_id", ID, sa.ForeignKey("connections.id", ondelete="SET NULL")),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rejected_reports_org_id", "rejected_reports", ["org_id"])
    op.create_index("ix_messages_org_id_provider_id", "messages", ["org_id", "provider_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_org_id_provider_id", "messages")
    op.drop_table("rejected_reports")
