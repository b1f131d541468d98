"""Cluster-wide connection limits, driven by several limiters (workers) sharing one database
through their own engines, as separate processes would, with a simulated clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from sqlalchemy import event, func, select

from tests.support.factories import make_org
from tidings.connections.models import Connection
from tidings.db.engine import Database
from tidings.dispatcher.limit_models import ConnectionBucket, ConnectionSlot
from tidings.dispatcher.limits import SLOT_RETRY_SECONDS, ConnectionLimiter, Grant
from tidings.settings import Settings
from tidings.testing import Clock

# Simulated time starts here, and tests speak in seconds after it (`clock.elapsed`): whole
# epoch seconds, so that the limiter's float arithmetic on them stays exact.
START = datetime.fromtimestamp(1_800_000_000, UTC)


@pytest.fixture
async def workers(
    settings: Settings, db: Database
) -> AsyncIterator[Callable[[int, Clock], list[ConnectionLimiter]]]:
    """`workers(n, clock)`: n limiters, each with its own engine and holder id."""
    engines: list[Database] = []

    def make(n: int, clock: Clock) -> list[ConnectionLimiter]:
        made = []
        for i in range(n):
            engines.append(Database(settings))
            made.append(
                ConnectionLimiter(engines[-1], holder=f"host{i}:{100 + i}:w", clock=clock.epoch)
            )
        return made

    yield make
    for engine in engines:
        await engine.dispose()


async def _connection(db: Database) -> int:
    org = await make_org(db)
    async with db.session() as session:
        connection = Connection(
            org_id=org.id,
            name="provider",
            channel="email",
            kind="smtp",
            settings={"host": "smtp.example"},
            credentials={},
        )
        session.add(connection)
        await session.commit()
        return connection.id


async def _slot_rows(db: Database) -> list[tuple[str, int]]:
    async with db.session() as session:
        rows = await session.execute(
            select(ConnectionSlot.holder, ConnectionSlot.sends).order_by(ConnectionSlot.id)
        )
        return [(holder, sends) for holder, sends in rows]


def _rate(limiter: ConnectionLimiter, cid: int, want: int, per_second: float = 10) -> Any:
    return limiter.acquire(
        cid, want=want, per_second=per_second, max_concurrency=None, hold_seconds=60
    )


def _slots(limiter: ConnectionLimiter, cid: int, want: int, *, hold: float = 60) -> Any:
    return limiter.acquire(cid, want=want, per_second=None, max_concurrency=4, hold_seconds=hold)


# ── rate ─────────────────────────────────────────────────────────────────────────────


async def test_rate_grants_one_second_of_burst_then_refills(db: Database) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    limiter = ConnectionLimiter(db, holder="solo", clock=clock.epoch)

    first = await _rate(limiter, cid, 100)
    assert first.count == 10
    assert first.retry_after == pytest.approx(0.1)
    assert (await _rate(limiter, cid, 100)).count == 0
    clock.elapsed = 0.5
    assert (await _rate(limiter, cid, 100)).count == 5
    clock.elapsed = 0.5625  # 0.625 tokens
    denied = await _rate(limiter, cid, 100)
    assert denied.count == 0
    assert denied.retry_after == pytest.approx(0.0375)
    clock.elapsed = 10.0  # a long pause refills one second's worth, no more
    assert (await _rate(limiter, cid, 100)).count == 10
    clock.elapsed = 10.375  # 3.75 tokens
    assert (await _rate(limiter, cid, 2)).count == 2  # never more than asked
    assert (await _rate(limiter, cid, 100)).count == 1


async def test_a_slow_rate_still_allows_one_send(db: Database) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    limiter = ConnectionLimiter(db, holder="solo", clock=clock.epoch)

    assert (await _rate(limiter, cid, 5, per_second=0.5)).count == 1
    denied = await _rate(limiter, cid, 5, per_second=0.5)
    assert denied.count == 0
    assert denied.retry_after == pytest.approx(2.0)
    clock.elapsed = 2.0
    assert (await _rate(limiter, cid, 5, per_second=0.5)).count == 1


async def test_rate_holds_for_several_workers_acquiring_at_once(
    db: Database, workers: Callable[[int, Clock], list[ConnectionLimiter]]
) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    limiters = workers(3, clock)
    granted: list[tuple[float, int]] = []
    for step in range(33):  # 0 s to 4 s, by 1.25 tokens, idle from 1 s to 3 s
        clock.elapsed = step / 8
        if 1 < clock.elapsed < 3:
            continue
        grants = await asyncio.gather(
            *(_rate(limiter, cid, 4) for limiter in limiters for _ in range(2))
        )
        granted.append((clock.elapsed, sum(g.count for g in grants)))
        if step == 0:
            assert granted[0][1] == 10  # the whole burst, shared out, once
    for i, (start, _) in enumerate(granted):
        for j in range(i, len(granted)):
            window = sum(n for _, n in granted[i : j + 1])
            assert window <= 10 * (granted[j][0] - start) + 10 + 1e-3, (start, granted[j][0])
    assert granted[9] == (3.0, 10)  # idle seconds refill one second's burst, no more
    assert sum(n for _, n in granted) >= 10 * 2 + 10 + 10 - 1  # and it is not stingy either


# ── concurrency ──────────────────────────────────────────────────────────────────────


async def test_concurrency_holds_across_workers_and_release_frees(
    db: Database, workers: Callable[[int, Clock], list[ConnectionLimiter]]
) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    limiters = workers(3, clock)
    asking = [w for w in limiters for _ in range(3)]

    grants = await asyncio.gather(*(_slots(w, cid, 2) for w in asking))
    assert sum(g.count for g in grants) == 4
    assert sum(sends for _, sends in await _slot_rows(db)) == 4
    full = await _slots(limiters[0], cid, 1)
    assert (full.count, full.retry_after) == (0, SLOT_RETRY_SECONDS)

    owner, grant = next((w, g) for w, g in zip(asking, grants, strict=True) if g.count)
    await owner.release(grant)
    again = await asyncio.gather(*(_slots(w, cid, 4) for w in limiters))
    assert sum(g.count for g in again) == grant.count
    assert sum(sends for _, sends in await _slot_rows(db)) == 4


async def test_release_by_another_holder_frees_nothing(
    db: Database, workers: Callable[[int, Clock], list[ConnectionLimiter]]
) -> None:
    cid = await _connection(db)
    a, b = workers(2, Clock(START))
    grant = await _slots(a, cid, 4)
    await b.release(grant)
    assert (await _slots(b, cid, 1)).count == 0
    await a.release(grant)
    assert (await _slots(b, cid, 1)).count == 1


async def test_a_dead_holders_slots_free_themselves_after_hold_seconds(
    db: Database, workers: Callable[[int, Clock], list[ConnectionLimiter]]
) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    dead, alive = workers(2, clock)
    assert (await _slots(dead, cid, 3, hold=30)).count == 3  # never released
    clock.elapsed = 10.0
    assert (await _slots(alive, cid, 3, hold=30)).count == 1
    clock.elapsed = 29.9
    assert (await _slots(alive, cid, 1)).count == 0
    clock.elapsed = 30.0
    assert (await _slots(alive, cid, 4)).count == 3
    # The dead holder's row is gone, not merely ignored: the table does not grow.
    assert await _slot_rows(db) == [(alive.holder, 1), (alive.holder, 3)]


# ── penalties ────────────────────────────────────────────────────────────────────────


async def test_penalise_stops_every_worker_until_it_passes(
    db: Database, workers: Callable[[int, Clock], list[ConnectionLimiter]]
) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    a, b = workers(2, clock)
    assert (await _rate(a, cid, 3)).count == 3
    clock.elapsed = 1.0
    await a.penalise(cid, seconds=30)

    for t in (1.0, 15.0, 30.75):
        clock.elapsed = t
        denied = await _rate(b, cid, 5)
        assert denied.count == 0
        # blocked until 31, then the bucket refills from empty: one token after 0.1 s
        assert denied.retry_after == pytest.approx(31.0 - t + 0.1)
    clock.elapsed = 10.0
    await b.penalise(cid, seconds=5)  # a shorter push-back never shortens the block
    clock.elapsed = 31.125  # 1.25 tokens
    assert (await _rate(b, cid, 5)).count == 1
    clock.elapsed = 32.0
    assert (await _rate(a, cid, 50)).count == 9


async def test_penalise_blocks_an_unlimited_connection_and_a_fresh_one(db: Database) -> None:
    cid = await _connection(db)
    clock = Clock(START)
    limiter = ConnectionLimiter(db, holder="solo", clock=clock.epoch)
    await limiter.penalise(cid, seconds=20)  # before any acquire: the row is created

    denied = await limiter.acquire(
        cid, want=7, per_second=None, max_concurrency=None, hold_seconds=60
    )
    assert denied.count == 0
    assert denied.retry_after == pytest.approx(20.0)
    clock.elapsed = 20.0
    granted = await limiter.acquire(
        cid, want=7, per_second=None, max_concurrency=None, hold_seconds=60
    )
    assert (granted.count, granted.retry_after) == (7, 0.0)


# ── unlimited, and want=0 ────────────────────────────────────────────────────────────


def _count_statements(db: Database) -> list[str]:
    seen: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper()
        if verb in {"SELECT", "INSERT", "UPDATE", "DELETE"}:
            seen.append(verb)

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    return seen


async def test_unlimited_grants_everything_in_one_statement(db: Database) -> None:
    cid = await _connection(db)
    limiter = ConnectionLimiter(db, holder="solo", clock=Clock(START).epoch)

    def unlimited(want: int) -> Any:
        return limiter.acquire(
            cid, want=want, per_second=None, max_concurrency=None, hold_seconds=60
        )

    assert (await unlimited(5_000)).count == 5_000
    statements = _count_statements(db)
    grant = await unlimited(5_000)
    assert (grant.count, grant.retry_after, grant.slot_id) == (5_000, 0.0, None)
    await limiter.release(grant)
    assert statements == ["UPDATE"]  # the block check; nothing held, nothing to release
    assert await _slot_rows(db) == []


async def test_the_rate_alone_is_one_update(db: Database) -> None:
    cid = await _connection(db)
    limiter = ConnectionLimiter(db, holder="solo", clock=Clock(START).epoch)
    await _rate(limiter, cid, 1)
    statements = _count_statements(db)
    assert (await _rate(limiter, cid, 1)).count == 1
    assert statements == ["UPDATE"]


async def test_want_zero_grants_zero_without_the_database(db: Database) -> None:
    cid = await _connection(db)
    nowhere = ConnectionLimiter(cast(Database, None), holder="solo", clock=Clock(START).epoch)
    grant = await nowhere.acquire(cid, want=0, per_second=10, max_concurrency=4, hold_seconds=60)
    assert (grant.count, grant.slot_id) == (0, None)
    await nowhere.release(grant)
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(ConnectionBucket)) == 0


# ── a random walk ────────────────────────────────────────────────────────────────────


@dataclass
class _Held:
    worker: int
    grant: Grant
    expires: float  # its slots count until then (released: the release time)
    state: str = "held"  # held | released | abandoned (its worker died)


@pytest.mark.parametrize("seed", [7, 2026])
async def test_random_walks_never_exceed_either_limit(
    db: Database, workers: Callable[[int, Clock], list[ConnectionLimiter]], seed: int
) -> None:
    rng = random.Random(seed)
    rate, capacity, limit, hold = 2.0, 2.0, 4, 2.0
    cid = await _connection(db)
    clock = Clock(START)
    limiters = workers(3, clock)
    held: list[_Held] = []
    grants: list[tuple[float, int]] = []
    blocked_until = 0.0
    rate_denials = 0
    slot_denials = 0

    def in_flight() -> int:
        # A hair early: the database compares epoch floats, this model offsets.
        return sum(h.grant.count for h in held if h.expires > clock.elapsed + 1e-6)

    async def acquire(worker: int, want: int) -> Grant:
        grant = await limiters[worker].acquire(
            cid, want=want, per_second=rate, max_concurrency=limit, hold_seconds=hold
        )
        assert 0 <= grant.count <= want
        if grant.count < want:
            assert grant.retry_after > 0
        if clock.elapsed < blocked_until - 1e-6:
            assert grant.count == 0, f"granted while penalised, t={clock.elapsed}"
        if grant.count:
            held.append(_Held(worker, grant, clock.elapsed + hold))
            grants.append((clock.elapsed, grant.count))
        return grant

    for _ in range(300):
        clock.elapsed += rng.choice([0.0, 0.0, 0.0625, 0.125, 0.25, 0.75])
        action = rng.random()
        if action < 0.45:
            worker = rng.randrange(3)
            grant = await acquire(worker, rng.randint(1, 4))
            if grant.count == 0:
                if clock.elapsed >= blocked_until and in_flight() < limit:
                    rate_denials += 1
                if in_flight() >= limit:
                    slot_denials += 1
                # retry_after is honest: then at least one send, unless slots are still full.
                clock.elapsed += grant.retry_after + 1e-4
                if in_flight() < limit:
                    assert (await acquire(worker, 1)).count == 1, f"t={clock.elapsed}"
        elif action < 0.6:
            await asyncio.gather(*(acquire(w, rng.randint(1, 3)) for w in range(3)))
        elif action < 0.9:
            live = [h for h in held if h.state == "held"]
            if live:
                done = rng.choice(live)
                if rng.random() < 0.8:
                    await limiters[done.worker].release(done.grant)
                    done.state, done.expires = "released", min(done.expires, clock.elapsed)
                else:
                    done.state = "abandoned"  # its slots must expire by themselves
            released = [h for h in held if h.state == "released"]
            if released and rng.random() < 0.2:  # a repeated release stays harmless
                late = rng.choice(released)
                await limiters[late.worker].release(late.grant)
        elif action >= 0.97:
            seconds = rng.choice([0.5, 1.0, 3.0])
            await limiters[rng.randrange(3)].penalise(cid, seconds=seconds)
            blocked_until = max(blocked_until, clock.elapsed + seconds)
        assert in_flight() <= limit, f"{in_flight()} sends in flight at t={clock.elapsed}"

    for i, (start, _) in enumerate(grants):
        window = 0
        for end, count in grants[i:]:
            window += count
            assert window <= rate * (end - start) + capacity + 1e-3, (seed, start, end)
    assert sum(count for _, count in grants) > 100  # the walk did send
    assert rate_denials > 5  # …and ran into the rate
    assert slot_denials > 5  # …and into the slots
