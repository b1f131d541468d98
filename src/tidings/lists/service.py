"""Lists and list membership."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import BigInteger, Table, delete, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import utcnow
from tidings.db.dialect import insert_selected_ignoring_conflicts, json_rows
from tidings.db.names import require_free_name, unique_name
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.lists.models import ContactList, ListMember
from tidings.lists.schemas import ListChanges

MEMBERS = cast(Table, ListMember.__table__)  # Core inserts: no ORM bulk machinery per row


@dataclass(frozen=True, slots=True)
class CountedList:
    list: ContactList
    contacts_count: int


async def require_lists(session: AsyncSession, *, org_id: int, list_ids: Sequence[int]) -> None:
    """Raise InvalidInput naming each of `list_ids` that is not a list of this org."""
    if not list_ids:
        return
    found = set(
        await session.scalars(
            select(ContactList.id).where(ContactList.org_id == org_id, ContactList.id.in_(list_ids))
        )
    )
    missing = [
        FieldError(f"list_ids[{i}]", f"list {lid} does not exist")
        for i, lid in enumerate(list_ids)
        if lid not in found
    ]
    if missing:
        raise InvalidInput(missing)


async def create_list(
    session: AsyncSession, *, org_id: int, name: str, description: str | None
) -> CountedList:
    await require_free_name(session, ContactList, org_id=org_id, name=name, what="list")
    item = ContactList(org_id=org_id, name=name, description=description)
    async with unique_name(session, name=name, what="list"):
        session.add(item)
    return CountedList(item, 0)


async def _get(session: AsyncSession, *, org_id: int, list_id: int) -> ContactList:
    item = await session.scalar(
        select(ContactList).where(ContactList.org_id == org_id, ContactList.id == list_id)
    )
    if item is None:
        raise NotFound("list", list_id)
    return item


async def _count(session: AsyncSession, *, org_id: int, list_id: int) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(ListMember)
            .where(ListMember.org_id == org_id, ListMember.list_id == list_id)
        )
        or 0
    )


async def get_list(session: AsyncSession, *, org_id: int, list_id: int) -> CountedList:
    item = await _get(session, org_id=org_id, list_id=list_id)
    return CountedList(item, await _count(session, org_id=org_id, list_id=list_id))


async def list_lists(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[CountedList]:
    counts = (
        select(ListMember.list_id, func.count().label("n"))
        .where(ListMember.org_id == org_id)
        .group_by(ListMember.list_id)
        .subquery()
    )
    query = (
        select(ContactList, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.list_id == ContactList.id)
        .where(ContactList.org_id == org_id)
    )
    if after_id is not None:
        query = query.where(ContactList.id > after_id)
    rows = await session.execute(query.order_by(ContactList.id).limit(limit))
    return [CountedList(item, int(n)) for item, n in rows]


async def update_list(
    session: AsyncSession, *, org_id: int, list_id: int, changes: ListChanges
) -> CountedList:
    item = await _get(session, org_id=org_id, list_id=list_id)
    if "name" in changes:
        await require_free_name(
            session,
            ContactList,
            org_id=org_id,
            name=changes["name"],
            what="list",
            except_id=list_id,
        )
    async with unique_name(session, name=changes.get("name", item.name), what="list"):
        if "name" in changes:
            item.name = changes["name"]
        if "description" in changes:
            item.description = changes["description"]
    return CountedList(item, await _count(session, org_id=org_id, list_id=list_id))


async def delete_list(session: AsyncSession, *, org_id: int, list_id: int) -> None:
    """Delete a list and its memberships; the contacts stay."""
    item = await _get(session, org_id=org_id, list_id=list_id)
    await session.execute(delete(ListMember).where(ListMember.list_id == item.id))
    await session.delete(item)
    await session.flush()


async def add_members(
    session: AsyncSession, *, org_id: int, list_id: int, contact_ids: Sequence[int]
) -> int:
    """Add contacts to the org's list (the caller has checked that they are the org's live
    contacts: `contacts.service.join_list`); returns how many joined."""
    await _get(session, org_id=org_id, list_id=list_id)
    before = await _count(session, org_id=org_id, list_id=list_id)
    await add_to_list(session, org_id=org_id, list_id=list_id, contact_ids=contact_ids)
    after = await _count(session, org_id=org_id, list_id=list_id)
    return after - before


async def add_to_list(
    session: AsyncSession, *, org_id: int, list_id: int, contact_ids: Sequence[int]
) -> None:
    """Query helper: the org's contacts join its list; members stay members.
    The caller has checked that the list and the contacts are the org's."""
    if not contact_ids:
        return
    v = json_rows(session, [{"c": c} for c in dict.fromkeys(contact_ids)], {"c": BigInteger()})
    members = select(
        literal(list_id, MEMBERS.c.list_id.type),
        v["c"],
        literal(org_id, MEMBERS.c.org_id.type),
        literal(utcnow(), MEMBERS.c.created_at.type),
    )
    names = ["list_id", "contact_id", "org_id", "created_at"]
    await session.execute(insert_selected_ignoring_conflicts(session, MEMBERS, names, members))


async def remove_members(
    session: AsyncSession, *, org_id: int, list_id: int, contact_ids: Sequence[int]
) -> int:
    await _get(session, org_id=org_id, list_id=list_id)
    result = await session.execute(
        delete(ListMember).where(
            ListMember.org_id == org_id,
            ListMember.list_id == list_id,
            ListMember.contact_id.in_(list(contact_ids)),
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
