"""Sending domains and their DKIM keys (issue 17, item 1): `sending_domains` (one row per
domain an org sends from) and `dkim_keys` (each key under its selector, the private key
sealed at rest like every other secret).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sending_domains",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("include_subdomains", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], ondelete="CASCADE", name="fk_sending_domains_org_id_orgs"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sending_domains"),
        sa.UniqueConstraint("org_id", "name", name="uq_sending_domains_org_id_name"),
    )
    op.create_index("ix_sending_domains_org_id", "sending_domains", ["org_id"])
    op.create_table(
        "dkim_keys",
        sa.Column("id", ID, nullable=False),
        sa.Column("org_id", ID, nullable=False),
        sa.Column("domain_id", ID, nullable=False),
        sa.Column("selector", sa.String(63), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("private_key", sa.Text(), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        _at("created_at"),
        _at("activated_at", nullable=True),
        _at("retired_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], ondelete="CASCADE", name="fk_dkim_keys_org_id_orgs"
        ),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["sending_domains.id"],
            ondelete="CASCADE",
            name="fk_dkim_keys_domain_id_sending_domains",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_dkim_keys"),
        sa.UniqueConstraint("domain_id", "selector", name="uq_dkim_keys_domain_id_selector"),
    )
    op.create_index("ix_dkim_keys_org_id", "dkim_keys", ["org_id"])


def downgrade() -> None:
    op.drop_index("ix_dkim_keys_org_id", table_name="dkim_keys")
    op.drop_table("dkim_keys")
    op.drop_index("ix_sending_domains_org_id", table_name="sending_domains")
    op.drop_table("sending_domains")
