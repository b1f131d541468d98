"""Content frozen when a send is accepted: template versions, campaign versions (what a
send froze of its campaign), and soft deletion of templates, campaigns and connections.

- `template_versions`: every content a template has had; each template gets its version 1
  here from its current content (`templates.version` = 1).
- `campaign_versions`: a campaign as a send froze it. Each campaign gets one here, from its
  current fields and its template's version 1, its connection resolved (its own, else the
  org's default for the channel, else null: the sink), so that the sends in flight go on
  as they would have. `digest` 'migrated' is one no freeze computes: the first send after
  the upgrade freezes a version of its own.
- `broadcasts.campaign_version_id`, `messages.campaign_version_id`: set here for what is in
  flight only (broadcasts scheduled, sending or paused; messages held, queued or sending).
  What finished before the upgrade was sent with its campaign as it was then, which is not
  known: those stay null rather than claim a version they may not have used.
- `deleted_at` on the three; their unique names (and a campaign's `external_id`, a
  connection's `email_service`) hold among the rows not deleted (partial unique indexes).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-20
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOT_DELETED = sa.text("deleted_at IS NULL")
UNIQUE = {  # table → the unique (org_id, column) pairs that now hold among live rows
    "templates": ("name",),
    "campaigns": ("name", "external_id"),
    "connections": ("name", "email_service"),
}


def _stamp(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "template_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "template_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("html", sa.Text()),
        sa.Column("text", sa.Text()),
        _stamp("created_at"),
        sa.Column("created_by", sa.String(64)),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], ondelete="CASCADE", name="fk_template_versions_org_id_orgs"
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["templates.id"],
            ondelete="CASCADE",
            name="fk_template_versions_template_id_templates",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_template_versions"),
        sa.UniqueConstraint(
            "template_id", "number", name="uq_template_versions_template_id_number"
        ),
    )
    op.create_index("ix_template_versions_org_id", "template_versions", ["org_id"])
    op.execute(
        "INSERT INTO template_versions "
        "(org_id, template_id, number, channel, subject, html, text, created_at) "
        "SELECT org_id, id, 1, channel, subject, html, text, updated_at FROM templates"
    )
    op.add_column(
        "templates", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    for table, columns in UNIQUE.items():
        op.add_column(table, _stamp("deleted_at", nullable=True))
        with op.batch_alter_table(table) as batch:
            for column in columns:
                batch.drop_constraint(f"uq_{table}_org_id_{column}", type_="unique")
        for column in columns:
            op.create_index(
                f"uq_{table}_org_id_{column}",
                table,
                ["org_id", column],
                unique=True,
                postgresql_where=NOT_DELETED,
                sqlite_where=NOT_DELETED,
            )

    op.create_table(
        "campaign_versions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("org_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "campaign_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "template_version_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("from_name", sa.String(200)),
        sa.Column("from_email", sa.String(320)),
        sa.Column("reply_to", sa.String(320)),
        sa.Column("sms_sender", sa.String(16)),
        sa.Column("connection_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
        sa.Column("track_opens", sa.Boolean(), nullable=False),
        sa.Column("track_clicks", sa.Boolean(), nullable=False),
        sa.Column("invite_url", sa.Text()),
        sa.Column("language", sa.String(8)),
        _stamp("created_at"),
        sa.ForeignKeyConstraint(
            ["org_id"], ["orgs.id"], ondelete="CASCADE", name="fk_campaign_versions_org_id_orgs"
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            ondelete="CASCADE",
            name="fk_campaign_versions_campaign_id_campaigns",
        ),
        sa.ForeignKeyConstraint(
            ["template_version_id"],
            ["template_versions.id"],
            ondelete="CASCADE",
            name="fk_campaign_versions_template_version_id_template_versions",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_campaign_versions_connection_id_connections",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_campaign_versions"),
        sa.UniqueConstraint(
            "campaign_id", "digest", name="uq_campaign_versions_campaign_id_digest"
        ),
    )
    for column in ("org_id", "template_version_id", "connection_id"):
        op.create_index(f"ix_campaign_versions_{column}", "campaign_versions", [column])
    op.execute(
        "INSERT INTO campaign_versions (org_id, campaign_id, template_version_id, digest, "
        "channel, purpose, from_name, from_email, reply_to, sms_sender, connection_id, "
        "track_opens, track_clicks, invite_url, language, created_at) "
        "SELECT c.org_id, c.id, v.id, 'migrated', c.channel, c.purpose, c.from_name, "
        "c.from_email, c.reply_to, c.sms_sender, COALESCE(c.connection_id, ("
        "  SELECT MIN(d.id) FROM connections d"
        "  WHERE d.org_id = c.org_id AND d.channel = c.channel AND d.is_default)), "
        "c.track_opens, c.track_clicks, c.invite_url, c.language, c.updated_at "
        "FROM campaigns c JOIN template_versions v ON v.template_id = c.template_id "
        "AND v.number = 1"
    )

    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(
            sa.Column("campaign_version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"))
        )
        batch.create_foreign_key(
            "fk_broadcasts_campaign_version_id_campaign_versions",
            "campaign_versions",
            ["campaign_version_id"],
            ["id"],
        )
    op.create_index("ix_broadcasts_campaign_version_id", "broadcasts", ["campaign_version_id"])
    op.add_column(
        "messages",
        sa.Column("campaign_version_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")),
    )
    op.execute(
        "UPDATE broadcasts SET campaign_version_id = (SELECT v.id FROM campaign_versions v "
        "WHERE v.campaign_id = broadcasts.campaign_id AND v.digest = 'migrated') "
        "WHERE campaign_id IS NOT NULL AND status IN ('SCHEDULED', 'SENDING', 'PAUSED')"
    )
    op.execute(
        "UPDATE messages SET campaign_version_id = (SELECT v.id FROM campaign_versions v "
        "WHERE v.campaign_id = messages.campaign_id AND v.digest = 'migrated') "
        "WHERE campaign_id IS NOT NULL AND status IN ('held', 'queued', 'sending')"
    )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("campaign_version_id")
    op.drop_index("ix_broadcasts_campaign_version_id", "broadcasts")
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_constraint(
            "fk_broadcasts_campaign_version_id_campaign_versions", type_="foreignkey"
        )
        batch.drop_column("campaign_version_id")
    op.drop_table("campaign_versions")
    for table, columns in UNIQUE.items():
        for column in columns:
            op.drop_index(f"uq_{table}_org_id_{column}", table)
        with op.batch_alter_table(table) as batch:
            batch.drop_column("deleted_at")
            for column in columns:
                batch.create_unique_constraint(f"uq_{table}_org_id_{column}", ["org_id", column])
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("version")
    op.drop_table("template_versions")
