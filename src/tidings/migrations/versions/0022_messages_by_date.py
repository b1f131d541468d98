"""Messages by date within an org: `ix_messages_org_id_created_at`, which the console's
overview (the last seven days) and its message search by date read a range of, instead
of every message the org ever had.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_messages_org_id_created_at", "messages", ["org_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_messages_org_id_created_at", table_name="messages")
