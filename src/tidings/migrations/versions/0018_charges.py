"""Events are marked test as their message is (issue 15, item 2): a test key's sends
only reach the sink, and their events say so, in the API and in webhook payloads.

`events.is_test` is NOT NULL with a constant default, so adding it rewrites no row on
PostgreSQL (11+) and copies none on SQLite; the events of existing test messages are
then marked.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "events", sa.Column("is_test", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(
        "UPDATE events SET is_test = true WHERE message_id IN "
        "(SELECT id FROM messages WHERE is_test = true)"
    )


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_column("is_test")
