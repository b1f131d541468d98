"""Per-org SMS country allowlists: `orgs.sms_countries`, and `contacts.phone_country`
derived from each stored phone (backfilled here). Single sends without a campaign: the
rows they are sent under, `templates.is_inline` and `campaigns.is_single_send`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BACKFILL_BATCH = 5_000

CONTACTS = sa.table(
    "contacts",
    sa.column("id", sa.BigInteger()),
    sa.column("phone", sa.String(16)),
    sa.column("phone_country", sa.String(2)),
)


def _country(e164: str) -> str | None:
    """Written out here rather than imported, so that this migration never changes with
    the code: the same rule as `contacts.normalize.phone_country` when it was written."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region is not None and len(region) == 2 else None


def _backfill() -> None:
    """Every stored phone's country, in batches by id (one UPDATE per batch, executemany)."""
    bind = op.get_bind()
    after = 0
    while True:
        rows = bind.execute(
            sa.select(CONTACTS.c.id, CONTACTS.c.phone)
            .where(CONTACTS.c.id > after, CONTACTS.c.phone.is_not(None))
            .order_by(CONTACTS.c.id)
            .limit(BACKFILL_BATCH)
        ).all()
        if not rows:
            return
        updates = [
            {"key": row.id, "country": country}
            for row in rows
            if (country := _country(row.phone)) is not None
        ]
        if updates:
            bind.execute(
                CONTACTS.update()
                .where(CONTACTS.c.id == sa.bindparam("key"))
                .values(phone_country=sa.bindparam("country")),
                updates,
            )
        after = rows[-1].id


def upgrade() -> None:
    op.add_column("orgs", sa.Column("sms_countries", JSON))
    op.add_column("contacts", sa.Column("phone_country", sa.String(2)))
    _backfill()
    for table, column in (("templates", "is_inline"), ("campaigns", "is_single_send")):
        op.add_column(
            table, sa.Column(column, sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("is_single_send")
    with op.batch_alter_table("templates") as batch:
        batch.drop_column("is_inline")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("phone_country")
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("sms_countries")
