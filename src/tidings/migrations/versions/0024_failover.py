"""Failover between providers and cross-channel fallback (issue 18, items 3 and 4).

- `campaigns.connection_ids`, `campaign_versions.connection_ids`: a campaign's ordered
  connections when it has more than one (null: `connection_id` alone).
- `messages.connection_id`: the connection a message's last attempt went through.
- `connection_health`: each connection's circuit breaker, shared by every worker.
- `campaigns.fallback_campaign_id`, `campaign_versions.fallback_version_id`: the campaign
  of the other channel a recipient gets instead; `messages.fallback_of` and
  `messages.fell_back_to` link the two messages; `broadcasts.fallback_count`.

The new columns are nullable without a default, but `fallback_count` (0): adding them
rewrites no row on either database (PostgreSQL 11+ stores a constant default once).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _moment(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("campaigns", sa.Column("connection_ids", JSON, nullable=True))
    op.add_column("campaign_versions", sa.Column("connection_ids", JSON, nullable=True))
    op.add_column("messages", sa.Column("connection_id", ID, nullable=True))
    op.add_column("messages", sa.Column("fallback_of", ID, nullable=True))
    op.add_column("messages", sa.Column("fell_back_to", ID, nullable=True))
    op.add_column("campaign_versions", sa.Column("fallback_version_id", ID, nullable=True))
    op.add_column(
        "broadcasts",
        sa.Column("fallback_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("fallback_campaign_id", ID, nullable=True))
        batch.create_foreign_key(
            "fk_campaigns_fallback_campaign_id_campaigns", "campaigns",
            ["fallback_campaign_id"], ["id"],
        )  # fmt: skip
    op.create_table(
        "connection_health",
        sa.Column("connection_id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _moment("opened_until", nullable=True),
        _moment("window_started_at"),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("previous_attempts", sa.Integer(), nullable=False),
        sa.Column("previous_errors", sa.Integer(), nullable=False),
        _moment("updated_at"),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], ondelete="CASCADE",
            name="fk_connection_health_connection_id_connections",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], ondelete="CASCADE",
            name="fk_connection_health_org_id_orgs",
        ),
        sa.PrimaryKeyConstraint("connection_id", name="pk_connection_health"),
    )  # fmt: skip
    op.create_index("ix_connection_health_org_id", "connection_health", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_connection_health_org_id", "connection_health")
    op.drop_table("connection_health")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("fk_campaigns_fallback_campaign_id_campaigns", type_="foreignkey")
        batch.drop_column("fallback_campaign_id")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("fallback_count")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("fell_back_to")
        batch.drop_column("fallback_of")
        batch.drop_column("connection_id")
    with op.batch_alter_table("campaign_versions") as batch:
        batch.drop_column("fallback_version_id")
        batch.drop_column("connection_ids")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("connection_ids")
