"""The credit ledger: reserve/release arithmetic, and what a broadcast costs end to end."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.support.factories import OrgWithKey, contact, make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.models import Broadcast
from tidings.credits import service as credits
from tidings.credits.models import CreditEntry
from tidings.db.base import utcnow
from tidings.db.engine import Database, begin_write
from tidings.dispatcher import queries
from tidings.errors import InsufficientCredit
from tidings.outbox.models import Message
from tidings.outbox.outcomes import Outcome

C = credits.MICRO


async def _balance(db: Database, org: OrgWithKey) -> int:
    async with db.session() as session:
        return await credits.balance_of(session, org_id=org.id)


async def _ledger_sum(db: Database, org: OrgWithKey) -> int:
    async with db.session() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                CreditEntry.org_id == org.id
            )
        )
    return int(total or 0)


async def _top_up(db: Database, org: OrgWithKey, amount: int) -> None:
    async with db.transaction() as session:
        await credits.top_up(session, org_id=org.id, amount=amount, note="test")


async def _email_price(db: Database, org: OrgWithKey, amount: int) -> None:
    async with db.transaction() as session:
        await credits.set_prices(
            session, org_id=org.id, prices=[credits.PriceRow("email", "*", amount)]
        )


async def _messages(db: Database, broadcast_id: int) -> dict[str, list[int]]:
    """Costs by status."""
    async with db.session() as session:
        rows = await session.execute(
            select(Message.status, Message.cost).where(Message.broadcast_id == broadcast_id)
        )
    found: dict[str, list[int]] = {}
    for status, cost in rows:
        found.setdefault(status, []).append(cost)
    return found


async def test_reserve_and_release_move_the_balance_and_append_entries(db: Database) -> None:
    org = await make_org(db)
    await _top_up(db, org, 5 * C)
    async with db.session() as session:
        await begin_write(session)
        assert await credits.reserve(session, org_id=org.id, amount=2 * C, reference="r1") == 3 * C
        assert await credits.reserve(session, org_id=org.id, amount=0) is None  # free: no entry
        await session.commit()
    async with db.session() as session:
        await begin_write(session)
        with pytest.raises(InsufficientCredit) as refused:
            await credits.reserve(session, org_id=org.id, amount=3 * C + 1)
        assert (refused.value.needed, refused.value.balance) == (3 * C + 1, 3 * C)
        await session.rollback()
    async with db.session() as session:
        await begin_write(session)
        await credits.release(session, org_id=org.id, amount=C, reference="r1", note="failed")
        await session.commit()
    async with db.session() as session:
        entries = await credits.list_entries(session, org_id=org.id, before_id=None, limit=10)
    assert [(e.kind, e.amount, e.balance_after) for e in entries] == [
        ("release", C, 4 * C),
        ("reserve", -2 * C, 3 * C),
        ("top-up", 5 * C, 5 * C),
    ]
    assert await _balance(db, org) == await _ledger_sum(db, org) == 4 * C


async def test_a_missing_balance_row_is_zero_and_refuses_any_cost(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        await begin_write(session)
        with pytest.raises(InsufficientCredit):
            await credits.reserve(session, org_id=org.id, amount=1)
    assert await _balance(db, org) == 0


async def test_a_broadcast_reserves_its_queued_messages_and_failures_come_back(
    db: Database,
) -> None:
    org = await make_org(db)
    await _top_up(db, org, 10 * C)
    await _email_price(db, org, C)
    campaign_id = await email_campaign(db, org)
    rows = [contact(1), contact(2), contact(3), {"phone": "+41791234567"}]  # no email: skipped
    people = await audience(db, org, rows)
    broadcast_id = await broadcast_now(db, org, campaign_id, people.list_id)
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=utcnow())
    costs = await _messages(db, broadcast_id)
    assert costs == {"queued": [C, C, C], "skipped": [0]}  # skipped cost nothing
    assert await _balance(db, org) == 7 * C

    now = utcnow()
    lease_until = now + timedelta(minutes=5)
    async with db.session() as session:
        await begin_write(session)
        claimed = await queries.claim(session, now=now, lease_until=lease_until, limit=10)
        await session.commit()
    assert [c.cost for c in claimed] == [C, C, C]
    outcomes = [
        Outcome(c.id, c.broadcast_id, "failed" if i == 0 else "sent", "bounced")
        for i, c in enumerate(claimed)
    ]
    async with db.session() as session:
        await begin_write(session)
        await queries.record(
            session,
            outcomes=outcomes,
            lease_until=lease_until,
            now=now,
        )
        await session.commit()
    assert await _balance(db, org) == await _ledger_sum(db, org) == 8 * C
    async with db.session() as session:
        entries = await credits.list_entries(session, org_id=org.id, before_id=None, limit=10)
    assert [(e.kind, e.amount) for e in entries] == [
        ("release", C),  # one entry for the batch's failures
        ("reserve", -3 * C),  # one entry for the broadcast
        ("top-up", 10 * C),
    ]


async def test_a_broadcast_the_balance_cannot_cover_fails_at_start(db: Database) -> None:
    org = await make_org(db)
    await _top_up(db, org, 2 * C)
    campaign_id = await email_campaign(db, org)
    people = await audience(db, org, [contact(i) for i in range(3)])
    broadcast_id = await broadcast_now(db, org, campaign_id, people.list_id)  # free: accepted
    # The price rises between accepting and starting (creating it now would be refused up
    # front, tests/acceptance/test_local_time.py): the start finds the balance short.
    await _email_price(db, org, C)
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=utcnow())
    async with db.session() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert (broadcast.status, broadcast.error_message) == ("FAILED", "insufficient credit")
    assert await _messages(db, broadcast_id) == {}  # nothing queued
    assert await _balance(db, org) == 2 * C


async def test_cancelling_gives_back_what_was_not_sent(db: Database) -> None:
    org = await make_org(db)
    await _top_up(db, org, 5 * C)
    await _email_price(db, org, C)
    campaign_id = await email_campaign(db, org)
    people = await audience(db, org, [contact(i) for i in range(3)])
    broadcast_id = await broadcast_now(db, org, campaign_id, people.list_id)
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=utcnow())
    assert await _balance(db, org) == 2 * C
    async with db.transaction() as session:
        await broadcasts.cancel(session, org_id=org.id, broadcast_id=broadcast_id)
    assert await _balance(db, org) == await _ledger_sum(db, org) == 5 * C
