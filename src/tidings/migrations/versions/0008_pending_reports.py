"""Delivery reports that arrive before their provider id is recorded wait in
pending_reports; rejected reports are pruned by age (an index on created_at).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "pending_reports",
        sa.Column("id", ID, primary_key=True),
        sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False),
        sa.Column(
            "connection_id",
            ID,
            sa.ForeignKey("connections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("provider_id", sa.String(128)),
        sa.Column("message_id", sa.BigInteger()),
        sa.Column("report", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_pending_reports_org_id_provider_id", "pending_reports", ["org_id", "provider_id"]
    )
    op.create_index("ix_rejected_reports_created_at", "rejected_reports", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_rejected_reports_created_at", "rejected_reports")
    op.drop_table("pending_reports")
