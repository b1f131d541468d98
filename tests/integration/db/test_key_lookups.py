"""rows_by_keys finds each key through its own index, whatever the org holds.

The plans are read from the database itself: a lookup that scans the org instead cost an
invite request 94 ms at 1,000,000 contacts on SQLite (db/dialect.py).
"""

from __future__ import annotations

from typing import cast

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import Contact
from tidings.db.dialect import dialect_name, rows_by_keys
from tidings.db.engine import Database
from tidings.keys.service import create_org

CONTACTS = cast(Table, Contact.__table__)


async def _plan(session: AsyncSession, column: str, keys: list[object]) -> str:
    query = rows_by_keys(session, table=CONTACTS, org_id=1, column=CONTACTS.c[column], keys=keys)
    compiled = query.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    explain = "EXPLAIN QUERY PLAN " if dialect_name(session) == "sqlite" else "EXPLAIN "
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    connection = await session.connection()
    rows = await connection.exec_driver_sql(explain + str(compiled), params)
    return "\n".join(" ".join(str(part) for part in row) for row in rows)


async def test_ids_are_found_by_primary_key_and_addresses_by_the_orgs_index(
    db: Database,
) -> None:
    async with db.session() as session:
        created = await create_org(session, name="plans")
    async with db.session() as session:
        await session.execute(
            text(
                "INSERT INTO contacts (org_id, email, attributes, email_status, sms_status,"
                " created_at, updated_at) VALUES (:org, :email, '{}', 'subscribed',"
                " 'subscribed', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            ),
            [{"org": created.org.id, "email": f"p{i}@example.org"} for i in range(200)],
        )
        await session.commit()
        # A request's worth of ids: with a few, SQLite picks the primary key anyway.
        by_id = await _plan(session, "id", list(range(1, 501)))
        by_email = await _plan(session, "email", ["p3@example.org", "p5@example.org"])

    if db.dialect == "sqlite":
        assert "USING INTEGER PRIMARY KEY" in by_id, by_id
        assert "org_id=?" not in by_id, by_id  # no index on the org's equality
        assert "(org_id=? AND email=?)" in by_email, by_email
    else:
        assert "pk_contacts" in by_id, by_id
        assert "uq_contacts_org_id_email" in by_email, by_email
