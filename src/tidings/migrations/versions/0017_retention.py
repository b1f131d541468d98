"""Retention per org: how many days message content, events and message rows are kept
(`privacy.retention`; null keeps forever). Existing orgs get the defaults a new org gets
(`orgs.models.RETENTION_DAYS`), so the first purge after the upgrade deletes what is older.
An index on `webhook_deliveries.event_id`: the purge deletes an event's deliveries with it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = {"content_retention_days": "30", "event_retention_days": "400",
           "message_retention_days": "400"}  # fmt: skip


def upgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        for name, days in COLUMNS.items():
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True, server_default=days))
    op.create_index("ix_webhook_deliveries_event_id", "webhook_deliveries", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_event_id", table_name="webhook_deliveries")
    with op.batch_alter_table("orgs") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
