"""record_events: idempotent, order-independent, exact under concurrent arrival."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

from sqlalchemy import select

from tests.support.factories import contact, make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts.models import Broadcast
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database, begin_write
from tidings.dispatcher.loop import Dispatcher
from tidings.events.models import Event
from tidings.events.service import NewEvent, record_events
from tidings.outbox.models import Message


async def _sent_broadcast(db: Database, n: int) -> tuple[int, int, list[int]]:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    target = await audience(db, org, [contact(i) for i in range(n)])
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    async with db.session() as session:
        ids = list(
            await session.scalars(
                select(Message.id).where(Message.broadcast_id == broadcast_id).order_by(Message.id)
            )
        )
    return org.id, broadcast_id, ids


def _reports(org_id: int, broadcast_id: int, ids: list[int]) -> list[NewEvent]:
    """Delivered for all, opened for half (one of them by a bot only), clicked for a
    quarter, a bounce and a complaint: events a provider and tracking would send."""
    now = utcnow()
    events = []
    for k, mid in enumerate(ids):

        def event(
            kind: str, ext: str, *, bot: bool = False, at: int = 0, mid: int = mid
        ) -> NewEvent:
            return NewEvent(
                org_id=org_id, type=kind, source="test", external_id=f"{ext}:{mid}",
                message_id=mid, broadcast_id=broadcast_id, is_bot=bot,
                occurred_at=now + timedelta(seconds=at),
            )  # fmt: skip

        events.append(event("delivered", "dlr", at=1))
        if k % 2 == 0:
            events.append(event("opened", "open", at=5))
        if k == 1:
            events.append(event("opened", "open-bot", bot=True, at=2))
        if k % 4 == 0:
            events.append(event("clicked", "click", at=9))
    events.append(event_for(org_id, broadcast_id, ids[-1], "bounced"))
    events.append(event_for(org_id, broadcast_id, ids[0], "complained"))
    return events


def event_for(org_id: int, broadcast_id: int, mid: int, kind: str) -> NewEvent:
    return NewEvent(
        org_id=org_id, type=kind, source="test", external_id=f"{kind}:{mid}",
        message_id=mid, broadcast_id=broadcast_id,
    )  # fmt: skip


async def _record(db: Database, events: list[NewEvent]) -> list[Event]:
    async with db.session() as session:
        await begin_write(session)
        new = await record_events(session, events=events)
        await session.commit()
    return new


async def _counters(db: Database, broadcast_id: int) -> dict[str, int]:
    async with db.session() as session:
        b = await session.get(Broadcast, broadcast_id)
        assert b is not None
        names = ("sent", "failed", "delivered", "opened", "clicked", "complained")
        return {name: getattr(b, f"{name}_count") for name in names}


EXPECTED = {"sent": 8, "failed": 1, "delivered": 8, "opened": 4, "clicked": 2, "complained": 1}


async def test_replayed_and_shuffled_reports_leave_exact_counters(db: Database) -> None:
    org_id, broadcast_id, ids = await _sent_broadcast(db, 8)
    events = _reports(org_id, broadcast_id, ids)
    assert len(await _record(db, events)) == len(events)
    for seed in range(3):  # replayed, in other orders and other batch cuts: nothing new
        replay = events[:]
        random.Random(seed).shuffle(replay)
        assert await _record(db, replay[:7]) == []
        assert await _record(db, replay[7:]) == []
    assert await _counters(db, broadcast_id) == EXPECTED
    async with db.session() as session:
        rows = {m.id: m for m in await session.scalars(select(Message))}
    assert rows[ids[0]].status == "complained"
    assert rows[ids[-1]].status == "bounced"
    assert rows[ids[2]].status == "delivered"
    assert rows[ids[1]].opened_at is None  # a bot's open sets nothing


async def test_a_late_delivered_moves_nothing_back(db: Database) -> None:
    org_id, broadcast_id, ids = await _sent_broadcast(db, 1)
    mid = ids[0]
    await _record(db, [event_for(org_id, broadcast_id, mid, "complained")])
    await _record(db, [event_for(org_id, broadcast_id, mid, "clicked")])
    await _record(db, [event_for(org_id, broadcast_id, mid, "delivered")])
    await _record(db, [event_for(org_id, broadcast_id, mid, "bounced")])
    async with db.session() as session:
        message = await session.get(Message, mid)
        assert message is not None
        assert message.status == "complained"  # terminal: the first of the two wins
        assert message.delivered_at is not None
        assert message.clicked_at is not None
    counters = await _counters(db, broadcast_id)
    assert counters["delivered"] == counters["clicked"] == counters["complained"] == 1
    assert counters["failed"] == 1  # the bounce still counts as a failure after sending


async def test_concurrent_sessions_recording_the_same_reports_count_once(db: Database) -> None:
    org_id, broadcast_id, ids = await _sent_broadcast(db, 8)
    events = _reports(org_id, broadcast_id, ids)

    async def worker(seed: int) -> int:
        mine = events[:]
        random.Random(seed).shuffle(mine)
        total = 0
        for start in range(0, len(mine), 5):
            total += len(await _record(db, mine[start : start + 5]))
        return total

    stored = await asyncio.gather(*(worker(seed) for seed in range(4)))
    assert sum(stored) == len(events)  # every event stored once, by one of them
    assert await _counters(db, broadcast_id) == EXPECTED
