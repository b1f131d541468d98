"""The two queries every tenant-owned object needs: one by id, and a page in id order.

Both filter by `org_id` first, so another org's object is simply not found (a 404 that
says nothing about whether it exists elsewhere).
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.errors import NotFound

Row = TypeVar("Row")


async def get_owned(
    session: AsyncSession,
    model: type[Row],
    *,
    org_id: int,
    ident: int,
    what: str,
    where: ColumnElement[bool] | None = None,
) -> Row:
    """The org's `model` row with this id (that meets `where`: e.g. not deleted), or
    NotFound naming `what`."""
    table: Any = model
    query = select(model).where(table.org_id == org_id, table.id == ident)
    found: Row | None = await session.scalar(query if where is None else query.where(where))
    if found is None:
        raise NotFound(what, ident)
    return found


def owned_page(
    model: type[Row],
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    newest_first: bool = False,
) -> Select[Row]:
    """The org's `model` rows after the cursor's id, in id order, at most `limit`;
    `newest_first`: the rows before the cursor's id, in descending id order (what a person
    at a terminal asks for: the latest ones)."""
    table: Any = model
    query = select(model).where(table.org_id == org_id)
    if newest_first:
        if after_id is not None:
            query = query.where(table.id < after_id)
        return query.order_by(table.id.desc()).limit(limit)
    if after_id is not None:
        query = query.where(table.id > after_id)
    return query.order_by(table.id).limit(limit)
