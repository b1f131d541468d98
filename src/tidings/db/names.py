"""Names unique within an org (lists, segments; later templates, campaigns).

The check before writing gives a clear error; the unique (org_id, name) constraint stays
the authority, and `unique_name` turns the loser of a concurrent race into the same clear
error instead of a 500. It writes in a savepoint, so the caller's transaction goes on
after the error (on PostgreSQL a failed statement otherwise aborts the whole transaction):
a caller may catch it and read the winner's row. Rows Tidings keeps one of per distinct
content are named after its digest (`digest_name`) and found or added in one step
(`find_or_add_named`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import insert_ignoring_conflicts
from tidings.errors import InvalidInput


async def require_free_name(
    session: AsyncSession,
    model: Any,
    *,
    org_id: int,
    name: str,
    what: str,
    except_id: int = 0,
    where: ColumnElement[bool] | None = None,
) -> None:
    """Raise InvalidInput on `name` if another row of `model` in the org (among those that
    meet `where`: e.g. not deleted) already has it."""
    query = select(model.id).where(
        model.org_id == org_id, model.name == name, model.id != except_id
    )
    taken = await session.scalar(query if where is None else query.where(where))
    if taken is not None:
        raise InvalidInput.field("name", f"a {what} named {name!r} exists (id {taken})")


@asynccontextmanager
async def unique_name(session: AsyncSession, *, name: str, what: str) -> AsyncIterator[None]:
    """The writes of a named row, made in the block, flushed in a savepoint at its end: a
    unique-name violation from a concurrent writer becomes InvalidInput, and only the
    savepoint is rolled back. Make every change of the row inside the block: what is
    pending when it opens is flushed before the savepoint."""
    try:
        async with session.begin_nested():
            yield
    except IntegrityError:
        raise InvalidInput.field("name", f"a {what} named {name!r} exists") from None


async def free_name(session: AsyncSession, model: Any, *, org_id: int, base: str) -> str:
    """`base`, or `base (2)`, `base (3)`…: the first name no row of `model` in the org has
    (for rows Tidings names itself, such as a campaign's recipient list)."""
    base = base[:240]
    name, n = base, 1
    while await session.scalar(select(model.id).where(model.org_id == org_id, model.name == name)):
        n += 1
        name = f"{base} ({n})"
    return name


def digest_name(kind: str, values: Mapping[str, object]) -> str:
    """`kind <sha256 of values>`: the name of a row Tidings keeps one of per distinct
    `values` (the inline content of single sends, the campaign they go out under)."""
    canonical = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f"{kind} {hashlib.sha256(canonical.encode()).hexdigest()}"


async def find_or_add_named(
    session: AsyncSession, model: Any, *, org_id: int, name: str, values: Mapping[str, object]
) -> Any:
    """The org's `model` row named `name`, inserted from `values` first if there is none
    (query helper: no commit). Raced safely: INSERT … ON CONFLICT DO NOTHING, then read,
    so two requests adding the same row at once both get the one row."""
    query = select(model).where(model.org_id == org_id, model.name == name)
    found = await session.scalar(query)
    if found is None:
        row = {**values, "org_id": org_id, "name": name}
        await session.execute(insert_ignoring_conflicts(session, model).values(row))
        found = await session.scalar(query)
    return found
