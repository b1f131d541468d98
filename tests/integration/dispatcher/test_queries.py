"""The hot-path statements, driven directly with a controlled clock."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.service import start_due
from tidings.db.base import utcnow
from tidings.db.engine import Database, begin_write
from tidings.dispatcher import queries
from tidings.outbox.models import Message
from tidings.outbox.outcomes import Outcome
from tidings.outbox.queue import Claimed


async def _queued_broadcast(db: Database, recipients: int) -> int:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    target = await audience(db, org, [{"email": f"q{i}@example.com"} for i in range(recipients)])
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    async with db.transaction() as session:
        assert await start_due(session, broadcast_id=broadcast_id, now=utcnow())
    return broadcast_id


async def _claim(db: Database, *, at: object, lease: object, limit: int) -> list[Claimed]:
    async with db.session() as session:
        await begin_write(session)
        claimed = await queries.claim(session, now=at, lease_until=lease, limit=limit)  # type: ignore[arg-type]
        await session.commit()
    return claimed


async def test_claims_only_due_rows_and_concurrent_claims_are_disjoint(db: Database) -> None:
    await _queued_broadcast(db, 120)
    now = utcnow()
    async with db.session() as session:
        await session.execute(
            update(Message).where(Message.id > 100).values(due_at=now + timedelta(hours=1))
        )
        await session.commit()
    lease = now + timedelta(minutes=5)
    batches = await asyncio.gather(*(_claim(db, at=now, lease=lease, limit=30) for _ in range(5)))
    ids = [m.id for batch in batches for m in batch]
    assert len(ids) == len(set(ids)) == 100  # every due row once; none of the future ones
    assert all(m.attempts == 1 for batch in batches for m in batch)


async def test_a_late_worker_changes_and_counts_nothing(db: Database) -> None:
    broadcast_id = await _queued_broadcast(db, 10)
    t0 = utcnow()
    first = await _claim(db, at=t0, lease=t0 + timedelta(seconds=1), limit=10)
    t1 = t0 + timedelta(seconds=5)  # the first worker's lease has run out
    async with db.session() as session:
        await begin_write(session)
        assert await queries.reap(session, now=t1) == 10
        await session.commit()
    second = await _claim(db, at=t1, lease=t1 + timedelta(minutes=5), limit=10)
    assert {m.id for m in second} == {m.id for m in first}

    def sent(batch: list[Claimed], worker: str) -> list[Outcome]:
        return [Outcome(m.id, m.broadcast_id, "sent", provider_id=worker) for m in batch]

    async with db.session() as session:
        await begin_write(session)
        written = await queries.record(
            session, outcomes=sent(second, "B"), lease_until=t1 + timedelta(minutes=5), now=t1
        )
        await session.commit()
    async with db.session() as session:
        await begin_write(session)
        late = await queries.record(
            session, outcomes=sent(first, "A"), lease_until=t0 + timedelta(seconds=1), now=t1
        )
        await session.commit()
    assert (written, late) == (10, 0)
    async with db.session() as session:
        providers = set(await session.scalars(select(Message.provider_id)))
        broadcast = await session.get(Broadcast, broadcast_id)
    assert providers == {"B"}
    assert broadcast is not None
    assert broadcast.sent_count == 10


async def test_retries_go_back_to_the_queue_at_their_time(db: Database) -> None:
    await _queued_broadcast(db, 3)
    now = utcnow()
    lease = now + timedelta(minutes=5)
    claimed = await _claim(db, at=now, lease=lease, limit=3)
    later = now + timedelta(minutes=2)
    outcomes = [
        Outcome(m.id, m.broadcast_id, "queued", "451 try later", retry_at=later) for m in claimed
    ]
    async with db.session() as session:
        await begin_write(session)
        await queries.record(session, outcomes=outcomes, lease_until=lease, now=now)
        await session.commit()
    assert await _claim(db, at=now + timedelta(minutes=1), lease=lease, limit=3) == []
    again = await _claim(db, at=later, lease=later + timedelta(minutes=5), limit=3)
    assert sorted(m.attempts for m in again) == [2, 2, 2]
    async with db.session() as session:
        reasons = set(await session.scalars(select(Message.reason)))
        queued = await session.scalar(
            select(func.count()).select_from(Message).where(Message.status == "sending")
        )
    assert reasons == {"451 try later"}
    assert queued == 3


async def test_resume_keeps_a_backoff_that_is_still_running(db: Database) -> None:
    from tidings.broadcasts import service as broadcasts

    broadcast_id = await _queued_broadcast(db, 2)
    later = utcnow() + timedelta(minutes=10)
    async with db.session() as session:
        first = await session.scalar(select(Message.id).order_by(Message.id).limit(1))
        await session.execute(update(Message).where(Message.id == first).values(due_at=later))
        await session.commit()
        org_id = await session.scalar(select(Message.org_id).limit(1))
    assert org_id is not None
    async with db.transaction() as session:
        await broadcasts.pause(session, org_id=org_id, broadcast_id=broadcast_id)
    async with db.transaction() as session:
        await broadcasts.resume(session, org_id=org_id, broadcast_id=broadcast_id)
    now = utcnow()
    claimed = await _claim(db, at=now, lease=now + timedelta(minutes=5), limit=10)
    assert len(claimed) == 1  # the other one, due now
    assert first not in {m.id for m in claimed}  # still waiting out its backoff


async def test_final_outcomes_are_events_once_and_counted_once(db: Database) -> None:
    from tidings.events.models import Event

    broadcast_id = await _queued_broadcast(db, 4)
    now = utcnow()
    lease = now + timedelta(minutes=5)
    claimed = sorted(await _claim(db, at=now, lease=lease, limit=4), key=lambda m: m.id)
    outcomes = [
        Outcome(claimed[0].id, broadcast_id, "sent", provider_id="q1"),
        Outcome(claimed[1].id, broadcast_id, "sent", provider_id="q2"),
        Outcome(claimed[2].id, broadcast_id, "failed", "550 no such user"),
        Outcome(claimed[3].id, broadcast_id, "queued", "451 later", retry_at=lease),
    ]
    for _ in range(2):  # the second time, nothing is held under that lease any more
        async with db.session() as session:
            await begin_write(session)
            written = await queries.record(session, outcomes=outcomes, lease_until=lease, now=now)
            await session.commit()
        assert written == (4 if _ == 0 else 0)
    async with db.session() as session:
        events = list(await session.scalars(select(Event).order_by(Event.message_id)))
        broadcast = await session.get(Broadcast, broadcast_id)
    assert [(e.message_id, e.type, e.data) for e in events] == [
        (claimed[0].id, "sent", None),
        (claimed[1].id, "sent", None),
        (claimed[2].id, "failed", {"reason": "550 no such user"}),
    ]  # the retry is no event: the message is not finished
    first = events[0]
    assert (first.source, first.external_id, first.is_bot) == (
        "dispatcher",
        f"sent:{claimed[0].id}",
        False,
    )
    assert first.broadcast_id == broadcast_id
    assert first.campaign_id is not None
    assert first.occurred_at == now
    assert broadcast is not None
    assert (broadcast.sent_count, broadcast.failed_count) == (2, 1)


async def test_endpoints_subscribed_to_sent_get_a_delivery_of_each(db: Database) -> None:
    from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint

    broadcast_id = await _queued_broadcast(db, 2)
    async with db.session() as session:
        org_id = await session.scalar(select(Message.org_id).limit(1))
        assert org_id is not None
        for types in (["sent"], ["opened"]):
            session.add(
                WebhookEndpoint(org_id=org_id, url="https://hooks.example/x", secret="s",
                                event_types=types)
            )  # fmt: skip
        await session.commit()
    now = utcnow()
    lease = now + timedelta(minutes=5)
    claimed = await _claim(db, at=now, lease=lease, limit=2)
    async with db.session() as session:
        await begin_write(session)
        await queries.record(
            session,
            outcomes=[Outcome(m.id, broadcast_id, "sent", provider_id="q") for m in claimed],
            lease_until=lease,
            now=now,
        )
        await session.commit()
    async with db.session() as session:
        deliveries = list(await session.scalars(select(WebhookDelivery)))
    assert sorted(d.payload["data"]["message_id"] for d in deliveries) == sorted(
        m.id for m in claimed
    )
    assert {d.event_type for d in deliveries} == {"sent"}
