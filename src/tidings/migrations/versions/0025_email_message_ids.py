"""Random Message-IDs: `messages.email_message_id` stores the one each email went with.

Message-IDs were `<message id>.<campaign id>@domain`, read back from a bounce to find the
message; they are now 128 random bits and the sending domain, and bounces find their
message through this column (partial index: only emails sent from now on have one).
Messages sent before keep NULL and are still matched by their old form.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_messages_org_id_email_message_id"
HAS_ID = sa.text("email_message_id IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("email_message_id", sa.String(255), nullable=True))
    op.create_index(
        INDEX,
        "messages",
        ["org_id", "email_message_id"],
        postgresql_where=HAS_ID,
        sqlite_where=HAS_ID,
    )


def downgrade() -> None:
    op.drop_index(INDEX, "messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("email_message_id")
