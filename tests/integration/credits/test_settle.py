"""The settle step: an SMS's reservation moved to what its final text costs, before it is
handed over (`dispatcher.queries.settle`, `credits.settle`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from tests.support.factories import OrgWithKey, make_org
from tidings.credits import service as credits
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher import queries
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus

PRICE = 10_000  # micro-credits per segment
LEASE = utcnow() + timedelta(minutes=5)


async def _claimed(
    db: Database, org: OrgWithKey, *segments: int, lease: datetime = LEASE
) -> list[int]:
    """SENDING messages under `lease`, each reserved for its `segments` at PRICE."""
    rows = [
        Message(
            org_id=org.id, channel="sms", recipient=f"+4179302{i:04d}",
            status=MessageStatus.SENDING, lease_until=lease, attempts=1,
            segments=n, cost=PRICE * n,
        )
        for i, n in enumerate(segments)
    ]  # fmt: skip
    async with db.transaction() as session:
        session.add_all(rows)
        await session.flush()
        return [m.id for m in rows]


async def _top_up(db: Database, org: OrgWithKey, amount: int) -> None:
    async with db.transaction() as session:
        await credits.top_up(session, org_id=org.id, amount=amount)


def _settlement(org: OrgWithKey, message_id: int, reserved: int, final: int) -> credits.Settlement:
    found = credits.settlement(
        message_id=message_id, org_id=org.id, reserved=PRICE * reserved,
        reserved_segments=reserved, segments=final,
    )  # fmt: skip
    assert found is not None
    return found


async def _rows(db: Database, ids: list[int]) -> list[tuple[int, int | None]]:
    async with db.session() as session:
        found = await session.execute(
            select(Message.cost, Message.segments).where(Message.id.in_(ids)).order_by(Message.id)
        )
    return [(cost, segments) for cost, segments in found]


async def _ledger(db: Database, org: OrgWithKey) -> list[tuple[str, int, int]]:
    async with db.session() as session:
        entries = await credits.list_entries(session, org_id=org.id, before_id=None, limit=10)
    return [(e.kind, e.amount, e.balance_after) for e in reversed(entries)]


def test_a_text_of_the_reserved_length_needs_no_settlement() -> None:
    same = {"message_id": 1, "org_id": 1, "reserved_segments": 2, "segments": 2}
    assert credits.settlement(reserved=2 * PRICE, **same) is None
    assert credits.settlement(reserved=0, **{**same, "segments": 3}) is None  # free
    legacy = credits.settlement(
        message_id=1, org_id=1, reserved=PRICE, reserved_segments=None, segments=2
    )  # reserved before `segments` was kept: one segment
    assert legacy is not None
    assert legacy.cost == 2 * PRICE


async def test_shorter_texts_give_back_and_longer_ones_take_what_the_balance_covers(
    db: Database,
) -> None:
    org = await make_org(db)
    await _top_up(db, org, 3 * PRICE)
    shorter, longer, too_long, fits = await _claimed(db, org, 3, 1, 1, 1)
    wanted = [
        _settlement(org, shorter, 3, 1),  # gives 2 back: balance 5
        _settlement(org, longer, 1, 3),  # takes 2: balance 3
        _settlement(org, too_long, 1, 5),  # would take 4: refused
        _settlement(org, fits, 1, 4),  # takes 3: balance 0
    ]
    async with db.transaction() as session:
        refused = await queries.settle(session, settlements=wanted, lease_until=LEASE)
    assert refused == {too_long}
    assert await _rows(db, [shorter, longer, too_long, fits]) == [
        (PRICE, 1),
        (3 * PRICE, 3),
        (PRICE, 1),  # keeps its reservation: its failure gives it back
        (4 * PRICE, 4),
    ]
    assert await _ledger(db, org) == [
        ("top-up", 3 * PRICE, 3 * PRICE),
        ("release", 2 * PRICE, 5 * PRICE),
        ("reserve", -5 * PRICE, 0),
    ]


async def test_a_message_no_longer_held_is_not_settled(db: Database) -> None:
    org = await make_org(db)
    await _top_up(db, org, 10 * PRICE)
    (mine,) = await _claimed(db, org, 1)
    (reclaimed,) = await _claimed(db, org, 1, lease=LEASE + timedelta(seconds=1))
    wanted = [_settlement(org, mine, 1, 2), _settlement(org, reclaimed, 1, 2)]
    async with db.transaction() as session:
        skipped = await queries.settle(session, settlements=wanted, lease_until=LEASE)
    assert skipped == {reclaimed}  # not handed over by this worker
    assert await _rows(db, [mine, reclaimed]) == [(2 * PRICE, 2), (PRICE, 1)]
    assert await _ledger(db, org) == [
        ("top-up", 10 * PRICE, 10 * PRICE),
        ("reserve", -PRICE, 9 * PRICE),
    ]
