"""Connection limits: a token bucket per connection and the concurrency slots held.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _connection_id(*, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        "connection_id",
        ID,
        sa.ForeignKey("connections.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


def _epoch(name: str) -> sa.Column[float]:
    return sa.Column(name, sa.Float(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "connection_buckets",
        _connection_id(primary_key=True),
        sa.Column("tokens", sa.Float(), nullable=False),
        _epoch("refilled_epoch"),
        _epoch("blocked_until_epoch"),
        sa.Column("last_granted", sa.Integer(), nullable=False),
    )
    op.create_table(
        "connection_slots",
        sa.Column("id", ID, primary_key=True),
        _connection_id(),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        _epoch("expires_epoch"),
        sqlite_autoincrement=True,  # ids are never reused: a late release frees nothing
    )
    op.create_index(
        "ix_connection_slots_connection_id_expires_epoch",
        "connection_slots",
        ["connection_id", "expires_epoch"],
    )


def downgrade() -> None:
    op.drop_table("connection_slots")
    op.drop_table("connection_buckets")
