"""Names unique within an org (lists, segments; later templates, campaigns).

The check before writing gives a clear error; the unique (org_id, name) constraint stays
the authority, and `commit_named` turns the loser of a concurrent race into the same
clear error instead of a 500.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.errors import InvalidInput


async def require_free_name(
    session: AsyncSession, model: Any, *, org_id: int, name: str, what: str, except_id: int = 0
) -> None:
    """Raise InvalidInput on `name` if another row of `model` in the org already has it."""
    taken = await session.scalar(
        select(model.id).where(model.org_id == org_id, model.name == name, model.id != except_id)
    )
    if taken is not None:
        raise InvalidInput.field("name", f"a {what} named {name!r} exists (id {taken})")


async def commit_named(session: AsyncSession, *, name: str, what: str) -> None:
    """Commit; a unique-name violation from a concurrent writer becomes InvalidInput."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        raise InvalidInput.field("name", f"a {what} named {name!r} exists") from None
