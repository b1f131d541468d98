"""Which contacts a broadcast reaches: the SQL condition its expansion selects them by."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ColumnElement, Table, exists, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import Contact
from tidings.lists.models import ListMember
from tidings.outbox.models import Message
from tidings.segments import filters
from tidings.segments.models import Segment
from tidings.segments.service import audience as segment_audience

C = cast(Table, Contact.__table__).c
M = cast(Table, Message.__table__).c


async def audience_condition(
    session: AsyncSession,
    *,
    org_id: int,
    audience: dict[str, Any],
    broadcast_id: int | None = None,
) -> ColumnElement[bool]:
    """Live (not erased) contacts of the org in any of the audience's lists or segments,
    or all of them (read only: the segments' filters are loaded). A broadcast with
    explicit recipients (`broadcast_id`) leaves out the contacts it holds a message for
    already: an explicit recipient also in its lists gets one message, with its own
    variables."""
    live = (C.org_id == org_id) & C.erased_at.is_(None)
    if broadcast_id is not None and audience.get("recipients"):
        held = select(M.id).where(M.broadcast_id == broadcast_id, M.contact_id == C.id)
        live = live & ~exists(held)
    if audience.get("send_to_all"):
        return live
    parts: list[ColumnElement[bool]] = []
    list_ids = audience.get("list_ids") or []
    if list_ids:
        members = select(ListMember.contact_id).where(
            ListMember.org_id == org_id, ListMember.list_id.in_(list_ids)
        )
        parts.append(C.id.in_(members))
    segment_ids = audience.get("segment_ids") or []
    if segment_ids:
        saved = await session.scalars(
            select(Segment.filter).where(Segment.org_id == org_id, Segment.id.in_(segment_ids))
        )
        for raw in saved:
            parts.append(segment_audience(session, org_id=org_id, node=filters.parse(raw)))
    return live & or_(false(), *parts)


async def count_audience(session: AsyncSession, *, org_id: int, audience: dict[str, Any]) -> int:
    """How many contacts `audience_condition` selects now (read only): what a broadcast
    to it would expand to, before those without an address for its channel, or
    suppressed, are skipped."""
    condition = await audience_condition(session, org_id=org_id, audience=audience)
    return int(await session.scalar(select(func.count()).where(condition)) or 0)
