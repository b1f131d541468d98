"""Sending: templates, connections, campaigns, broadcasts, the messages outbox, the sink.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COUNTERS = (
    "contacts_count",
    "recipients_count",
    "skipped_count",
    "sent_count",
    "failed_count",
    "delivered_count",
    "opened_count",
    "clicked_count",
    "played_count",
    "complained_count",
    "unsubscribed_count",
)


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True)


def _ref(
    name: str, table: str, *, nullable: bool = False, ondelete: str | None = None
) -> sa.Column[int]:
    return sa.Column(name, ID, sa.ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "templates",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("html", sa.Text()),
        sa.Column("text", sa.Text()),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_templates_org_id", "templates", ["org_id"])
    op.create_table(
        "connections",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("settings", JSON, nullable=False),
        sa.Column("credentials", JSON, nullable=False),
        sa.Column("max_per_second", sa.Float()),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_connections_org_id", "connections", ["org_id"])
    op.create_table(
        "campaigns",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        _ref("template_id", "templates"),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("from_name", sa.String(200)),
        sa.Column("from_email", sa.String(320)),
        sa.Column("reply_to", sa.String(320)),
        sa.Column("sms_sender", sa.String(16)),
        _ref("connection_id", "connections", nullable=True),
        _ref("list_id", "lists", nullable=True, ondelete="SET NULL"),
        sa.Column("track_opens", sa.Boolean(), nullable=False),
        sa.Column("track_clicks", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_campaigns_org_id", "campaigns", ["org_id"])
    op.create_table(
        "broadcasts",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        _ref("campaign_id", "campaigns"),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("audience", JSON, nullable=False),
        _at("scheduled_at", nullable=True),
        _at("started_at", nullable=True),
        _at("completed_at", nullable=True),
        sa.Column("error_message", sa.Text()),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTERS),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_index("ix_broadcasts_org_id", "broadcasts", ["org_id"])
    op.create_index("ix_broadcasts_campaign_id", "broadcasts", ["campaign_id"])
    op.create_index("ix_broadcasts_status_scheduled_at", "broadcasts", ["status", "scheduled_at"])
    op.create_table(
        "messages",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        _ref("broadcast_id", "broadcasts", nullable=True, ondelete="CASCADE"),
        _ref("campaign_id", "campaigns", nullable=True),
        _ref("contact_id", "contacts", nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320)),
        sa.Column("variables", JSON),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("attempts", sa.SmallInteger(), nullable=False),
        _at("due_at"),
        _at("lease_until", nullable=True),
        sa.Column("provider_id", sa.String(128)),
        sa.Column("segments", sa.SmallInteger()),
        _at("created_at"),
        _at("sent_at", nullable=True),
        _at("finished_at", nullable=True),
        sa.UniqueConstraint("broadcast_id", "contact_id"),
    )
    queued = sa.text("status = 'queued'")
    sending = sa.text("status = 'sending'")
    op.create_index(
        "ix_messages_due", "messages", ["due_at"], postgresql_where=queued, sqlite_where=queued
    )
    op.create_index(
        "ix_messages_leased",
        "messages",
        ["lease_until"],
        postgresql_where=sending,
        sqlite_where=sending,
    )
    op.create_index("ix_messages_broadcast_id_status", "messages", ["broadcast_id", "status"])
    op.create_index("ix_messages_org_id_id", "messages", ["org_id", "id"])
    op.create_index("ix_messages_contact_id", "messages", ["contact_id"])
    op.create_table(
        "sink_messages",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        _ref("message_id", "messages", nullable=True, ondelete="SET NULL"),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("recipient", sa.String(320)),
        sa.Column("subject", sa.Text()),
        sa.Column("content", sa.Text()),
        sa.Column("segments", sa.SmallInteger()),
        _at("created_at"),
    )
    op.create_index("ix_sink_messages_org_id_id", "sink_messages", ["org_id", "id"])
    op.create_index("ix_sink_messages_message_id", "sink_messages", ["message_id"])
    op.create_table(
        "links",
        sa.Column(
            "message_id",
            ID,
            sa.ForeignKey("messages.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.SmallInteger(), primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        _at("first_clicked_at", nullable=True),
    )
    op.create_table(
        "idempotency_keys",
        _id(),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("response", JSON),
        _at("created_at"),
        _at("finished_at", nullable=True),
        sa.UniqueConstraint("org_id", "key"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_keys",
        "links",
        "sink_messages",
        "messages",
        "broadcasts",
        "campaigns",
        "connections",
        "templates",
    ):
        op.drop_table(table)
