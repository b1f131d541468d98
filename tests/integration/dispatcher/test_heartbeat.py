"""Workers heartbeat (issue 13, item 3): a worker silent for `dead_after` seconds is dead,
and the next heartbeat of any live worker frees its claimed messages and its connection
slots; a live worker's claims and slots are renewed, never freed. Driven with a simulated
clock, two workers on one database as two processes would be."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tests.support.factories import make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings import metrics
from tidings.broadcasts.service import start_due
from tidings.connections.models import Connection
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher import queries
from tidings.dispatcher.heartbeat import Heartbeat
from tidings.dispatcher.limit_models import ConnectionSlot
from tidings.dispatcher.limits import ConnectionLimiter
from tidings.dispatcher.worker_models import Worker
from tidings.outbox.models import Message
from tidings.outbox.queue import Claimed
from tidings.settings import Settings
from tidings.testing import Clock

DEAD_AFTER = 10.0

Make = Callable[[str], Heartbeat]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def workers(settings: Settings, clock: Clock) -> AsyncIterator[Make]:
    """`workers(name)`: a joined worker's heartbeat, on its own engine."""
    engines: list[Database] = []

    def make(name: str) -> Heartbeat:
        engines.append(Database(settings))
        limiter = ConnectionLimiter(engines[-1], holder=name, clock=clock.epoch)
        return Heartbeat(
            engines[-1], limiter=limiter, interval=2.0, dead_after=DEAD_AFTER,
            clock=clock.epoch, wall=clock,
        )  # fmt: skip

    yield make
    for engine in engines:
        await engine.dispose()


async def _messages(db: Database, count: int) -> int:
    """A started broadcast of `count` messages, due now; returns its id."""
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    target = await audience(db, org, [{"email": f"h{i}@example.com"} for i in range(count)])
    broadcast_id = await broadcast_now(db, org, campaign_id, target.list_id)
    async with db.transaction() as session:
        await start_due(session, broadcast_id=broadcast_id, now=utcnow())
    return org.id


async def _claim(heartbeat: Heartbeat, limit: int, *, at: datetime | None = None) -> list[Claimed]:
    now = (at or utcnow()) + timedelta(seconds=1)
    async with heartbeat.db.transaction() as session:
        return await queries.claim(
            session,
            now=now,
            lease_until=now + timedelta(minutes=5),
            limit=limit,
            worker_id=heartbeat.worker_id,
        )


async def _connection(db: Database, org_id: int) -> int:
    async with db.transaction() as session:
        connection = Connection(
            org_id=org_id, name="p", channel="email", kind="smtp",
            settings={"host": "smtp.example"}, credentials={},
        )  # fmt: skip
        session.add(connection)
        await session.flush()
        return connection.id


async def _hold(heartbeat: Heartbeat, connection_id: int) -> None:
    grant = await heartbeat.limiter.acquire(
        connection_id, want=2, per_second=None, max_concurrency=8, hold_seconds=DEAD_AFTER
    )
    assert grant.count == 2


async def _rows(
    db: Database,
) -> tuple[dict[int, tuple[str, int | None, int]], list[str], dict[str, float]]:
    """Messages (id → status, worker_id, attempts), worker names, slots (holder → expiry)."""
    async with db.session() as session:
        messages = {
            row.id: (row.status, row.worker_id, row.attempts)
            for row in await session.execute(
                select(Message.id, Message.status, Message.worker_id, Message.attempts)
            )
        }
        names = list(await session.scalars(select(Worker.name).order_by(Worker.name)))
        slots = dict(
            (
                await session.execute(select(ConnectionSlot.holder, ConnectionSlot.expires_epoch))
            ).all()
        )
    return messages, names, slots


async def test_a_silent_workers_claims_and_slots_are_freed_and_a_live_ones_kept(
    db: Database, clock: Clock, workers: Make
) -> None:
    org_id = await _messages(db, 6)
    connection_id = await _connection(db, org_id)
    stop = asyncio.Event()
    dead, live = workers("dead"), workers("live")
    assert await dead.join(stop)
    assert await live.join(stop)
    of_dead = {c.id for c in await _claim(dead, 3)}
    of_live = {c.id for c in await _claim(live, 3)}
    assert len(of_dead) == len(of_live) == 3
    await _hold(dead, connection_id)
    await _hold(live, connection_id)
    before = metrics.CLAIMS_FREED._value.get()

    clock.advance(DEAD_AFTER - 1)
    assert (await live.beat()).workers == []  # silent for 9 s: not dead yet
    clock.advance(2)
    freed = await live.beat()  # silent for 11 s
    assert (freed.workers, freed.messages, freed.slots) == ([(dead.worker_id, "dead")], 3, 1)
    assert metrics.CLAIMS_FREED._value.get() - before == 3

    messages, names, slots = await _rows(db)
    assert {messages[i] for i in of_dead} == {("queued", None, 1)}  # the claim's attempt kept
    assert {messages[i] for i in of_live} == {("sending", live.worker_id, 1)}
    assert names == ["live"]
    assert slots == {"live": clock.epoch() + DEAD_AFTER}  # renewed by the heartbeat

    # The freed messages are due at once, for whoever claims next: the live worker here.
    assert {c.id for c in await _claim(live, 10, at=clock())} == of_dead


async def test_a_worker_of_this_host_whose_process_is_gone_is_dead_after_two_heartbeats(
    db: Database, clock: Clock, workers: Make
) -> None:
    """A service manager restarting a crashed worker: the new one frees its predecessor's
    claims at once, not `dead_after` later. A silent worker whose process still runs
    (stalled, or another's process id) waits for `dead_after` as before."""
    await _messages(db, 6)
    stop = asyncio.Event()
    crashed, stalled, live = workers("crashed"), workers("stalled"), workers("live")
    for heartbeat in (crashed, stalled, live):
        assert await heartbeat.join(stop)
    of_crashed = {c.id for c in await _claim(crashed, 3)}
    of_stalled = {c.id for c in await _claim(stalled, 3)}
    ended = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE
    )
    gone_pid = int((await ended.communicate())[0])
    async with db.transaction() as session:  # its process has exited (this test's runs on)
        await session.execute(
            update(Worker).where(Worker.id == crashed.worker_id).values(pid=gone_pid)
        )

    clock.advance(3)
    assert (await live.beat()).workers == []  # 3 s: not two heartbeats yet
    clock.advance(2)
    freed = await live.beat()  # 5 s of silence, and its process is gone
    assert (freed.workers, freed.messages) == ([(crashed.worker_id, "crashed")], 3)
    messages, names, _ = await _rows(db)
    assert {messages[i][0] for i in of_crashed} == {"queued"}
    assert {messages[i][0] for i in of_stalled} == {"sending"}  # its process runs: waits
    assert sorted(names) == ["live", "stalled"]
    clock.advance(DEAD_AFTER - 4)  # 11 s: dead whatever its process
    assert (await live.beat()).workers == [(stalled.worker_id, "stalled")]


async def test_a_worker_taken_for_dead_joins_again_under_its_id(
    db: Database, clock: Clock, workers: Make
) -> None:
    await _messages(db, 2)
    stop = asyncio.Event()
    slow, other = workers("slow"), workers("other")
    assert await slow.join(stop)
    assert await other.join(stop)
    slow_id = slow.worker_id
    await _claim(slow, 1)
    clock.advance(DEAD_AFTER + 1)
    assert (await other.beat()).messages == 1
    await slow.beat()  # it was only slow: its row is back, its later claims are its own
    assert slow.worker_id == slow_id
    _, names, _ = await _rows(db)
    assert names == ["other", "slow"]
    clock.advance(1)
    assert (await other.beat()).workers == []


async def test_a_worker_stopping_gives_back_what_it_holds(
    db: Database, clock: Clock, workers: Make
) -> None:
    org_id = await _messages(db, 3)
    connection_id = await _connection(db, org_id)
    leaving = workers("leaving")
    assert await leaving.join(asyncio.Event())
    claimed = await _claim(leaving, 2)
    await _hold(leaving, connection_id)
    await leaving.leave()
    messages, names, slots = await _rows(db)
    assert {messages[c.id][0] for c in claimed} == {"queued"}
    assert names == []
    assert slots == {}


async def test_after_the_database_was_away_a_worker_waits_before_taking_others_for_dead(
    db: Database, clock: Clock, workers: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every heartbeat is stale after an outage: the first worker back must give the
    others `dead_after` seconds to beat before it frees their claims."""
    await _messages(db, 2)
    stop = asyncio.Event()
    back_first, back_later = workers("first"), workers("later")
    assert await back_first.join(stop)
    assert await back_later.join(stop)
    await _claim(back_later, 2)
    beat = queries.beat

    async def unreachable(session: AsyncSession, **kwargs: object) -> bool:
        raise ConnectionResetError("the database restarts")

    monkeypatch.setattr(queries, "beat", unreachable)
    with pytest.raises(ConnectionResetError):
        await back_first.beat()
    monkeypatch.setattr(queries, "beat", beat)
    clock.advance(DEAD_AFTER + 5)  # a long outage: "later" looks dead
    assert (await back_first.beat()).workers == []  # back for 0 s: judges nobody
    clock.advance(DEAD_AFTER / 2)
    assert (await back_first.beat()).workers == []
    await back_later.beat()  # its turn came: alive
    clock.advance(DEAD_AFTER / 2)
    assert (await back_first.beat()).workers == []  # it did beat: not dead
    async with db.session() as session:
        sending = await session.scalar(
            select(func.count()).select_from(Message).where(Message.status == "sending")
        )
    assert sending == 2
