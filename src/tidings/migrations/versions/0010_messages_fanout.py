"""Broadcast expansion writes a million message rows in seconds: messages lose their four
foreign keys, and the reports' provider-id index holds only rows that have one.

On PostgreSQL a foreign key is checked by a trigger per inserted row; with four of them
(org, broadcast, campaign, contact) a 1,000,000-contact `INSERT … SELECT` spent about
three quarters of its time in them (EXPLAIN ANALYZE at 100,000 rows: ~2 s per key).
Messages are only ever written from rows read in the same transaction, contacts are
never deleted (erasure keeps the row), and nothing deletes orgs, broadcasts or
campaigns that have messages, so the keys guarded nothing the code does not.

`ix_messages_org_id_provider_id` (delivery reports look messages up by provider id)
becomes partial, `WHERE provider_id IS NOT NULL`: a message gets its provider id when it
is sent, so an insert no longer adds an entry to it.

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = (  # constraint, column, referred table, ON DELETE
    ("fk_messages_org_id_orgs", "org_id", "orgs", "CASCADE"),
    ("fk_messages_broadcast_id_broadcasts", "broadcast_id", "broadcasts", "CASCADE"),
    ("fk_messages_campaign_id_campaigns", "campaign_id", "campaigns", None),
    ("fk_messages_contact_id_contacts", "contact_id", "contacts", None),
)
PROVIDER_INDEX = "ix_messages_org_id_provider_id"
HAS_PROVIDER_ID = sa.text("provider_id IS NOT NULL")


def upgrade() -> None:
    op.drop_index(PROVIDER_INDEX, "messages")
    with op.batch_alter_table("messages") as batch:
        for name, _, _, _ in KEYS:
            batch.drop_constraint(name, type_="foreignkey")
    op.create_index(
        PROVIDER_INDEX,
        "messages",
        ["org_id", "provider_id"],
        postgresql_where=HAS_PROVIDER_ID,
        sqlite_where=HAS_PROVIDER_ID,
    )


def downgrade() -> None:
    op.drop_index(PROVIDER_INDEX, "messages")
    with op.batch_alter_table("messages") as batch:
        for name, column, table, ondelete in KEYS:
            batch.create_foreign_key(name, table, [column], ["id"], ondelete=ondelete)
    op.create_index(PROVIDER_INDEX, "messages", ["org_id", "provider_id"])
