"""Foundation: orgs, API keys, contacts, lists, list members, segments.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True)


def _org_id() -> sa.Column[int]:
    return sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "orgs",
        _id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("login", sa.String(64), nullable=False, unique=True),
        sa.Column("phone_region", sa.String(2)),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "api_keys",
        _id(),
        _org_id(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        _at("created_at"),
        _at("last_used_at", nullable=True),
        _at("revoked_at", nullable=True),
    )
    op.create_index("ix_api_keys_org_id", "api_keys", ["org_id"])
    op.create_table(
        "contacts",
        _id(),
        _org_id(),
        sa.Column("email", sa.String(320)),
        sa.Column("phone", sa.String(16)),
        sa.Column("first_name", sa.String(200)),
        sa.Column("last_name", sa.String(200)),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("locale", sa.String(35)),
        sa.Column("timezone", sa.String(64)),
        sa.Column("email_status", sa.String(16), nullable=False),
        sa.Column("sms_status", sa.String(16), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("erased_at", nullable=True),
        sa.UniqueConstraint("org_id", "email"),
        sa.UniqueConstraint("org_id", "phone"),
    )
    op.create_table(
        "lists",
        _id(),
        _org_id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_lists_org_id", "lists", ["org_id"])
    op.create_table(
        "list_members",
        sa.Column("list_id", ID, sa.ForeignKey("lists.id", ondelete="CASCADE"), primary_key=True),
        sa.Column(
            "contact_id", ID, sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
        ),
        _org_id(),
        _at("created_at"),
    )
    op.create_index("ix_list_members_contact_id", "list_members", ["contact_id"])
    op.create_table(
        "segments",
        _id(),
        _org_id(),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("filter", JSON, nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "name"),
    )
    op.create_index("ix_segments_org_id", "segments", ["org_id"])


def downgrade() -> None:
    for table in ("segments", "list_members", "lists", "contacts", "api_keys", "orgs"):
        op.drop_table(table)
