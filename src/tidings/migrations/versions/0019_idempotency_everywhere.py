"""Idempotency-Key on every creating route: a key is one org's on one route.

- `idempotency_keys.route`: the digest of the method and path a key was used on; the
  unique constraint becomes (org_id, route, key). Keys stored before this revision were
  all taken by `POST /v1/orgs/{org_id}/messages`, so they get that route.
- `idempotency_keys.media_type`: the stored answer's content type (a dialect's error is
  JSON in its own shape, a native one problem+json).
- An index on `created_at`, by which expired keys are deleted.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEYS = sa.table(
    "idempotency_keys",
    sa.column("id", sa.BigInteger()),
    sa.column("org_id", sa.BigInteger()),
    sa.column("route", sa.String()),
)


def _messages_route(org_id: int) -> str:
    # As tidings.idempotency.service.route_digest, frozen here.
    return hashlib.sha256(f"POST /v1/orgs/{org_id}/messages".encode()).hexdigest()


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("route", sa.String(64), nullable=True))
        batch.add_column(sa.Column("media_type", sa.String(100), nullable=True))
    bind = op.get_bind()
    orgs = bind.execute(sa.select(KEYS.c.org_id).distinct()).scalars().all()
    for org_id in orgs:
        bind.execute(
            sa.update(KEYS).where(KEYS.c.org_id == org_id).values(route=_messages_route(org_id))
        )
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("route", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("uq_idempotency_keys_org_id_key", type_="unique")
        batch.create_unique_constraint(
            "uq_idempotency_keys_org_id_route_key", ["org_id", "route", "key"]
        )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_idempotency_keys_created_at", "idempotency_keys")
    # A key may now be held on several routes; the older shape has room for one.
    op.execute(sa.delete(KEYS))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_constraint("uq_idempotency_keys_org_id_route_key", type_="unique")
        batch.create_unique_constraint("uq_idempotency_keys_org_id_key", ["org_id", "key"])
        batch.drop_column("media_type")
        batch.drop_column("route")
