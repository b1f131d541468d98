"""Broadcasts: create, read, pause, resume, cancel; and `start_due`, which the dispatcher
calls to expand a due broadcast and set it SENDING in one transaction.

"Send now" is a broadcast scheduled for now: the dispatcher expands it on its next tick
(about a second), so creating a broadcast of a million recipients answers at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.expand import expand
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.status import BroadcastStatus, transition
from tidings.campaigns.service import get_campaign
from tidings.db.base import utcnow
from tidings.db.engine import begin_write
from tidings.db.owned import get_owned, owned_page
from tidings.errors import FieldError, InvalidInput
from tidings.lists.service import require_lists
from tidings.messages.models import Message
from tidings.segments.models import Segment

S = BroadcastStatus
MESSAGES = cast(Table, Message.__table__)


async def create_broadcast(
    session: AsyncSession,
    *,
    org_id: int,
    body: BroadcastCreate,
    is_test: bool = False,
    now: datetime | None = None,
) -> Broadcast:
    now = now or utcnow()
    await begin_write(session)
    await get_campaign(session, org_id=org_id, campaign_id=body.campaign_id)
    await require_lists(session, org_id=org_id, list_ids=body.list_ids)
    if body.segment_ids:
        found = set(
            await session.scalars(
                select(Segment.id).where(Segment.org_id == org_id, Segment.id.in_(body.segment_ids))
            )
        )
        missing = [
            FieldError(f"segment_ids[{i}]", f"segment {sid} does not exist")
            for i, sid in enumerate(body.segment_ids)
            if sid not in found
        ]
        if missing:
            raise InvalidInput(missing)
    broadcast = Broadcast(
        org_id=org_id,
        campaign_id=body.campaign_id,
        name=body.name,
        status=S.DRAFT if body.draft else S.SCHEDULED,
        audience={
            "list_ids": body.list_ids,
            "segment_ids": body.segment_ids,
            "send_to_all": body.send_to_all,
        },
        scheduled_at=None if body.draft else (body.scheduled_at or now),
        is_test=is_test,
    )
    session.add(broadcast)
    await session.commit()
    return broadcast


async def get_broadcast(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    return await get_owned(session, Broadcast, org_id=org_id, ident=broadcast_id, what="broadcast")


async def list_broadcasts(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> list[Broadcast]:
    page = owned_page(Broadcast, org_id=org_id, after_id=after_id, limit=limit)
    return list(await session.scalars(page))


async def _move_messages(
    session: AsyncSession, *, broadcast_id: int, source: str, target: str, now: datetime
) -> None:
    # A resumed message keeps its due_at: one past is due now anyway, and one ahead is a
    # backoff or a provider's Retry-After that resuming must not cut short.
    values: dict[str, object] = {"status": target}
    if target == "cancelled":
        values.update(finished_at=now, reason="broadcast cancelled")
    await session.execute(
        update(MESSAGES)
        .where(MESSAGES.c.broadcast_id == broadcast_id, MESSAGES.c.status == source)
        .values(**values)
    )


async def send_draft(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """DRAFT → SCHEDULED for now (its own scheduled_at if that is still ahead)."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.SCHEDULED)
    if broadcast.scheduled_at is None or broadcast.scheduled_at < now:
        broadcast.scheduled_at = now
    await session.commit()
    return broadcast


async def pause(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Queued messages are held; those already with a worker finish normally."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.PAUSED)
    await _move_messages(
        session, broadcast_id=broadcast.id, source="queued", target="held", now=now
    )
    await session.commit()
    return broadcast


async def resume(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Back to SENDING if it had started (held messages queued again), else SCHEDULED."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    target = S.SENDING if broadcast.started_at is not None else S.SCHEDULED
    broadcast.status = transition(S(broadcast.status), target)
    await _move_messages(
        session, broadcast_id=broadcast.id, source="held", target="queued", now=now
    )
    await session.commit()
    return broadcast


async def cancel(session: AsyncSession, *, org_id: int, broadcast_id: int) -> Broadcast:
    """Queued and held messages become cancelled; those with a worker finish normally."""
    now = utcnow()
    await begin_write(session)
    broadcast = await get_broadcast(session, org_id=org_id, broadcast_id=broadcast_id)
    broadcast.status = transition(S(broadcast.status), S.CANCELLED)
    broadcast.completed_at = now
    for source in ("queued", "held"):
        await _move_messages(
            session, broadcast_id=broadcast.id, source=source, target="cancelled", now=now
        )
    await session.commit()
    return broadcast


async def start_due(session: AsyncSession, *, broadcast_id: int, now: datetime) -> bool:
    """Expand a due SCHEDULED broadcast and set it SENDING, in one transaction.

    False when it is no longer due (paused, cancelled, or started by another worker
    meanwhile): the status is read again inside the write transaction.
    """
    await begin_write(session)
    broadcast = await session.get(Broadcast, broadcast_id, with_for_update=True)
    if (
        broadcast is None
        or broadcast.status != S.SCHEDULED
        or (broadcast.scheduled_at is not None and broadcast.scheduled_at > now)
    ):
        await session.rollback()
        return False
    campaign = await get_campaign(
        session, org_id=broadcast.org_id, campaign_id=broadcast.campaign_id
    )
    counts = await expand(session, broadcast=broadcast, campaign=campaign, now=now)
    broadcast.status = transition(S.SCHEDULED, S.SENDING)
    broadcast.started_at = now
    broadcast.contacts_count = counts.contacts
    broadcast.recipients_count = counts.recipients
    broadcast.skipped_count = counts.skipped
    await session.commit()
    return True
