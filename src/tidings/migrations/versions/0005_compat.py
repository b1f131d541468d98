"""The seed dialects: campaign references and invite targets, applications and their
integrations (seed 003), the email service a connection stands for (seed 001), drafts
without a campaign (seed 002), and credits.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def _ref(
    name: str, table: str, *, nullable: bool = False, ondelete: str | None = None
) -> sa.Column[int]:
    return sa.Column(name, ID, sa.ForeignKey(f"{table}.id", ondelete=ondelete), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("external_id", sa.String(128)))
        batch.add_column(sa.Column("project_ref", sa.String(128)))
        batch.add_column(sa.Column("survey_ref", sa.String(128)))
        batch.add_column(sa.Column("invite_url", sa.Text()))
        batch.add_column(sa.Column("language", sa.String(8)))
        batch.create_unique_constraint("uq_campaigns_org_id_external_id", ["org_id", "external_id"])
    with op.batch_alter_table("connections") as batch:
        batch.add_column(sa.Column("email_service", sa.String(16)))
        batch.create_unique_constraint(
            "uq_connections_org_id_email_service", ["org_id", "email_service"]
        )
    with op.batch_alter_table("broadcasts") as batch:  # seed 002: a draft has no template yet
        batch.alter_column("campaign_id", existing_type=ID, nullable=True)
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("cost", sa.BigInteger(), nullable=False, server_default="0"))
    op.create_table(
        "applications",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("sms_sender", sa.String(16)),
        _ref("connection_id", "connections", nullable=True),
        _ref("template_id", "templates"),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "key"),
    )
    op.create_table(
        "integrations",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        _ref("application_id", "applications", ondelete="CASCADE"),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("target_url", sa.Text(), nullable=False),
        _ref("campaign_id", "campaigns"),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("application_id", "type"),
    )
    op.create_index("ix_integrations_org_id", "integrations", ["org_id"])
    op.create_table(
        "prices",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("org_id", "channel", "country"),
    )
    op.create_table(
        "credit_balances",
        sa.Column("org_id", ID, sa.ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        _at("updated_at"),
    )
    op.create_table(
        "credit_entries",
        sa.Column("id", ID, primary_key=True),
        _ref("org_id", "orgs", ondelete="CASCADE"),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("reference", sa.String(64)),
        sa.Column("note", sa.String(200)),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        _at("created_at"),
    )
    op.create_index("ix_credit_entries_org_id_id", "credit_entries", ["org_id", "id"])


def downgrade() -> None:
    op.drop_table("credit_entries")
    op.drop_table("credit_balances")
    op.drop_table("prices")
    op.drop_table("integrations")
    op.drop_table("applications")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("cost")
    with op.batch_alter_table("broadcasts") as batch:
        batch.alter_column("campaign_id", existing_type=ID, nullable=False)
    with op.batch_alter_table("connections") as batch:
        batch.drop_constraint("uq_connections_org_id_email_service", type_="unique")
        batch.drop_column("email_service")
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_constraint("uq_campaigns_org_id_external_id", type_="unique")
        for column in ("language", "invite_url", "survey_ref", "project_ref", "external_id"):
            batch.drop_column(column)
