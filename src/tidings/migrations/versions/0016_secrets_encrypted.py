"""Secrets sealed at rest; Kannel's delivery-report URL built by Tidings.

- `connections.credentials` and `webhook_endpoints.secret` become text holding values
  sealed with AES-GCM (`db/sealed.py`). This revision keeps the values as they were
  (it has no key); the first `tidings serve`, `worker` or CLI command after it seals
  them (`seal_plaintext`), and until then they read as plaintext.
- An `http_sms` connection's `settings.body` (which may carry the gateway's key) moves to
  its credentials.
- A `kannel` connection's `settings.dlr_url` is dropped: Tidings builds the URL from the
  connection. `delivery_reports` says whether it had one, and an `inbound_token` is made
  for one that has none.

Downgrade needs the values in plaintext: it refuses while any is sealed.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07
"""

import json
import secrets
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
CONNECTIONS = sa.table(
    "connections",
    sa.column("id", sa.BigInteger()),
    sa.column("kind", sa.String()),
    sa.column("settings", JSON),
    sa.column("credentials", sa.Text()),
)


def _rows() -> list[Any]:
    query = sa.select(CONNECTIONS).where(CONNECTIONS.c.kind.in_(("http_sms", "kannel")))
    return list(op.get_bind().execute(query))


def _write(ident: int, settings: dict[str, Any], credentials: dict[str, Any]) -> None:
    op.get_bind().execute(
        sa.update(CONNECTIONS)
        .where(CONNECTIONS.c.id == ident)
        .values(settings=settings, credentials=json.dumps(credentials, sort_keys=True))
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE connections ALTER COLUMN credentials TYPE text USING credentials::text"
        )
        op.execute("ALTER TABLE webhook_endpoints ALTER COLUMN secret TYPE text")
    else:
        with op.batch_alter_table("connections") as batch:
            batch.alter_column("credentials", type_=sa.Text(), existing_nullable=False)
        with op.batch_alter_table("webhook_endpoints") as batch:
            batch.alter_column("secret", type_=sa.Text(), existing_nullable=False)
    for row in _rows():
        settings, credentials = dict(row.settings), json.loads(row.credentials)
        if row.kind == "http_sms" and "body" in settings:
            credentials["body"] = settings.pop("body")
        if row.kind == "kannel":
            settings["delivery_reports"] = bool(settings.pop("dlr_url", None))
            credentials.setdefault("inbound_token", secrets.token_urlsafe(32))
        _write(row.id, settings, credentials)


def downgrade() -> None:
    bind = op.get_bind()
    sealed = bind.scalar(
        sa.select(sa.func.count())
        .select_from(CONNECTIONS)
        .where(CONNECTIONS.c.credentials.like("enc:%"))
    )
    sealed_webhooks = bind.scalar(
        sa.text("SELECT count(*) FROM webhook_endpoints WHERE secret LIKE 'enc:%'")
    )
    if sealed or sealed_webhooks:
        raise RuntimeError("secrets are sealed: a downgrade below 0015 needs them in plaintext")
    for row in _rows():
        settings, credentials = dict(row.settings), json.loads(row.credentials)
        if row.kind == "http_sms" and "body" in credentials:
            settings["body"] = credentials.pop("body")
        if row.kind == "kannel":
            settings.pop("delivery_reports", None)
        _write(row.id, settings, credentials)
    if bind.dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE connections ALTER COLUMN credentials TYPE jsonb USING credentials::jsonb"
        )
        op.execute("ALTER TABLE webhook_endpoints ALTER COLUMN secret TYPE varchar(100)")
    else:
        with op.batch_alter_table("connections") as batch:
            batch.alter_column("credentials", type_=sa.JSON(), existing_nullable=False)
        with op.batch_alter_table("webhook_endpoints") as batch:
            batch.alter_column("secret", type_=sa.String(100), existing_nullable=False)
