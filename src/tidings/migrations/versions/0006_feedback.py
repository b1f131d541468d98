"""The feedback loop: events, what happened to each message after sending, suppressions,
soft-bounce counts, and outbound webhooks.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AFTER_SENDING = (
    "delivered_at",
    "bounced_at",
    "opened_at",
    "clicked_at",
    "played_at",
    "complained_at",
    "unsubscribed_at",
)


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _ref(
    name: str, table: str, *, nullable: bool = False, ondelete: str | None = None
) -> sa.Column[int]:
    return sa.Column(name, ID, sa.ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        for name in AFTER_SENDING:
            batch.add_column(_at(name, nullable=True))
    op.create_table(
        "events",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        _ref("message_id", "messages", nullable=True, ondelete="CASCADE"),
        _ref("broadcast_id", "broadcasts", nullable=True, ondelete="CASCADE"),
        _ref("campaign_id", "campaigns", nullable=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("external_id", sa.String(200)),
        sa.Column("is_bot", sa.Boolean(), nullable=False),
        sa.Column("data", JSON),
        _at("occurred_at"),
        _at("created_at"),
        sa.UniqueConstraint("org_id", "source", "external_id"),
    )
    op.create_index("ix_events_org_id_id", "events", ["org_id", "id"])
    op.create_index("ix_events_broadcast_id_type", "events", ["broadcast_id", "type"])
    op.create_index("ix_events_message_id", "events", ["message_id"])
    op.create_table(
        "suppressions",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("source", sa.String(32), nullable=False),
        sa.Column("note", sa.String(500)),
        _at("created_at"),
        sa.UniqueConstraint("org_id", "channel", "address"),
    )
    op.create_table(
        "soft_bounces",
        sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("address", sa.String(320), primary_key=True),
        sa.Column("count", sa.Integer(), nullable=False),
        _at("last_at"),
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("secret", sa.String(100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_index("ix_webhook_endpoints_org_id", "webhook_endpoints", ["org_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        _ref("endpoint_id", "webhook_endpoints", ondelete="CASCADE"),
        _ref("event_id", "events", nullable=True, ondelete="SET NULL"),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        _at("next_attempt_at"),
        sa.Column("last_status_code", sa.Integer()),
        sa.Column("last_error", sa.String(500)),
        _at("created_at"),
        _at("delivered_at", nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_webhook_deliveries_org_id_id", "webhook_deliveries", ["org_id", "id"])


def downgrade() -> None:
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
    op.drop_table("soft_bounces")
    op.drop_table("suppressions")
    op.drop_table("events")
    with op.batch_alter_table("messages") as batch:
        for name in reversed(AFTER_SENDING):
            batch.drop_column(name)
