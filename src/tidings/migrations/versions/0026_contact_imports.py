"""The console's CSV imports and how far each is (`contact_imports`).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
AT = sa.DateTime(timezone=True)
JSON_DOC = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "contact_imports",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("started_by", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("report", JSON_DOC, nullable=False),
        sa.Column("started_at", AT, nullable=False),
        sa.Column("finished_at", AT),
        sa.PrimaryKeyConstraint("id", name="pk_contact_imports"),
    )
    op.create_index("ix_contact_imports_org_id", "contact_imports", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_contact_imports_org_id", table_name="contact_imports")
    op.drop_table("contact_imports")
