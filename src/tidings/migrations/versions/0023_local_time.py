"""Each recipient's local time, quiet hours, and the schedule a broadcast's messages keep.

- `orgs.timezone`: the zone of a recipient whose own is not known (null = UTC);
  `orgs.quiet_hours`: marketing quiet hours per channel; `orgs.sending_days`: the ISO
  weekdays marketing may go out on.
- `campaigns.quiet_hours` and `campaign_versions.quiet_hours`: a campaign's own quiet
  hours (frozen with the rest of it when a send is accepted).
- `broadcasts.local_time`, `broadcasts.local_date`: "09:30 local", on a date or the next;
  `broadcasts.due_schedule`: when its messages come due, one entry per due time.

All nullable, nothing to backfill: null is what every row meant before.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("orgs") as batch:
        batch.add_column(sa.Column("timezone", sa.String(64), nullable=True))
        batch.add_column(sa.Column("quiet_hours", JSON, nullable=True))
        batch.add_column(sa.Column("sending_days", JSON, nullable=True))
    for table in ("campaigns", "campaign_versions"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("quiet_hours", JSON, nullable=True))
    with op.batch_alter_table("broadcasts") as batch:
        batch.add_column(sa.Column("local_time", sa.String(5), nullable=True))
        batch.add_column(sa.Column("local_date", sa.String(10), nullable=True))
        batch.add_column(sa.Column("due_schedule", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.drop_column("due_schedule")
        batch.drop_column("local_date")
        batch.drop_column("local_time")
    for table in ("campaign_versions", "campaigns"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("quiet_hours")
    with op.batch_alter_table("orgs") as batch:
        batch.drop_column("sending_days")
        batch.drop_column("quiet_hours")
        batch.drop_column("timezone")
