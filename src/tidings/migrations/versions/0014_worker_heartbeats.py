"""Workers heartbeat: a `workers` row per running dispatcher, and each claimed message
names the worker that claimed it, so that a dead worker's claims are freed within seconds
of its death instead of when their lease runs out (issue 13, item 3).

`messages.worker_id` is nullable and has no default, so adding it rewrites no row on
either database (PostgreSQL stores nothing for it; SQLite's ADD COLUMN needs no copy).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_epoch", sa.Float(), nullable=False),
        sa.UniqueConstraint("name", name="uq_workers_name"),
        sqlite_autoincrement=True,  # ids are never reused: a message's worker_id is one claim's
    )
    op.add_column("messages", sa.Column("worker_id", ID, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("worker_id")
    op.drop_table("workers")
