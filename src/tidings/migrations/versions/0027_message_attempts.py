"""Each attempt's connection: `message_attempts` keeps the attempts that did not end
their message (a retry, a failover), and a partial index finds a broadcast's messages
that fell back, so that the broadcast waits for its fallbacks before it is SENT.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-08
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)
FELL_BACK = "ix_messages_broadcast_id_fell_back_to"
HAS_FALLBACK = sa.text("fell_back_to IS NOT NULL")


def upgrade() -> None:
    op.create_table(
        "message_attempts",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("message_id", ID, nullable=False),
        sa.Column("attempt", sa.SmallInteger(), nullable=False),
        sa.Column("connection_id", ID),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500)),
        sa.Column("at", AT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_attempts"),
    )
    op.create_index("ix_message_attempts_message_id", "message_attempts", ["message_id"])
    op.create_index(
        FELL_BACK,
        "messages",
        ["broadcast_id", "fell_back_to"],
        postgresql_where=HAS_FALLBACK,
        sqlite_where=HAS_FALLBACK,
    )


def downgrade() -> None:
    op.drop_index(FELL_BACK, "messages")
    op.drop_index("ix_message_attempts_message_id", table_name="message_attempts")
    op.drop_table("message_attempts")
