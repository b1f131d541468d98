"""Segments: saved filters, counted and listed in SQL (contacts are never loaded to filter)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import Contact
from tidings.db.dialect import dialect_name
from tidings.db.names import require_free_name, unique_name
from tidings.errors import FieldError, InvalidInput, NotFound
from tidings.lists.models import ContactList
from tidings.segments import filters
from tidings.segments.models import Segment
from tidings.segments.schemas import SegmentChanges


@dataclass(frozen=True, slots=True)
class CountedSegment:
    segment: Segment
    contacts_count: int


async def _checked(session: AsyncSession, *, org_id: int, raw: dict[str, Any]) -> filters.Node:
    node = filters.parse(raw)
    wanted = filters.list_ids(node)
    if wanted:
        found = set(
            await session.scalars(
                select(ContactList.id).where(
                    ContactList.org_id == org_id, ContactList.id.in_(wanted)
                )
            )
        )
        missing = sorted(wanted - found)
        if missing:
            raise InvalidInput(
                [FieldError("filter", f"list {lid} does not exist") for lid in missing]
            )
    return node


def audience(session: AsyncSession, *, org_id: int, node: filters.Node) -> ColumnElement[bool]:
    """The SQL condition selecting the org's live contacts that match `node`.

    Broadcast expansion (`INSERT … SELECT`) and counts share it, so they always agree.
    """
    condition = filters.compile_filter(node, org_id=org_id, dialect=dialect_name(session))
    return (Contact.org_id == org_id) & Contact.erased_at.is_(None) & condition


async def count_matching(session: AsyncSession, *, org_id: int, raw: dict[str, Any]) -> int:
    node = await _checked(session, org_id=org_id, raw=raw)
    return await _count(session, org_id=org_id, node=node)


async def _count(session: AsyncSession, *, org_id: int, node: filters.Node) -> int:
    condition = audience(session, org_id=org_id, node=node)
    query = select(func.count()).select_from(Contact).where(condition)
    return int(await session.scalar(query) or 0)


async def _get(session: AsyncSession, *, org_id: int, segment_id: int) -> Segment:
    segment = await session.scalar(
        select(Segment).where(Segment.org_id == org_id, Segment.id == segment_id)
    )
    if segment is None:
        raise NotFound("segment", segment_id)
    return segment


async def _counted(session: AsyncSession, segment: Segment) -> CountedSegment:
    node = filters.parse(segment.filter)
    return CountedSegment(segment, await _count(session, org_id=segment.org_id, node=node))


async def create_segment(
    session: AsyncSession,
    *,
    org_id: int,
    name: str,
    description: str | None,
    filter: dict[str, Any],
) -> CountedSegment:
    await _checked(session, org_id=org_id, raw=filter)
    await require_free_name(session, Segment, org_id=org_id, name=name, what="segment")
    segment = Segment(org_id=org_id, name=name, description=description, filter=filter)
    async with unique_name(session, name=name, what="segment"):
        session.add(segment)
    return await _counted(session, segment)


async def update_segment(
    session: AsyncSession,
    *,
    org_id: int,
    segment_id: int,
    changes: SegmentChanges,
) -> CountedSegment:
    segment = await _get(session, org_id=org_id, segment_id=segment_id)
    if "name" in changes:
        await require_free_name(
            session,
            Segment,
            org_id=org_id,
            name=changes["name"],
            what="segment",
            except_id=segment_id,
        )
    if "filter" in changes:
        await _checked(session, org_id=org_id, raw=changes["filter"])
    async with unique_name(session, name=changes.get("name", segment.name), what="segment"):
        if "name" in changes:
            segment.name = changes["name"]
        if "description" in changes:
            segment.description = changes["description"]
        if "filter" in changes:
            segment.filter = changes["filter"]
    return await _counted(session, segment)


async def get_segment(session: AsyncSession, *, org_id: int, segment_id: int) -> CountedSegment:
    return await _counted(session, await _get(session, org_id=org_id, segment_id=segment_id))


async def list_segments(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[CountedSegment]:
    query = select(Segment).where(Segment.org_id == org_id)
    if after_id is not None:
        query = query.where(Segment.id > after_id)
    segments = list(await session.scalars(query.order_by(Segment.id).limit(limit)))
    return [await _counted(session, s) for s in segments]


async def counted_segments(
    session: AsyncSession, *, org_id: int, segment_ids: Collection[int]
) -> dict[int, CountedSegment]:
    """The org's segments among `segment_ids`, each counted now; deleted ones are absent."""
    if not segment_ids:
        return {}
    query = select(Segment).where(Segment.org_id == org_id, Segment.id.in_(list(segment_ids)))
    return {s.id: await _counted(session, s) for s in await session.scalars(query)}


async def delete_segment(session: AsyncSession, *, org_id: int, segment_id: int) -> None:
    await session.delete(await _get(session, org_id=org_id, segment_id=segment_id))
    await session.flush()


async def segment_contacts(
    session: AsyncSession, *, org_id: int, segment_id: int, after_id: int | None, limit: int
) -> list[Contact]:
    """A page of the segment's contacts in id order."""
    segment = await _get(session, org_id=org_id, segment_id=segment_id)
    node = filters.parse(segment.filter)
    query = select(Contact).where(audience(session, org_id=org_id, node=node))
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    return list(await session.scalars(query.order_by(Contact.id).limit(limit)))
