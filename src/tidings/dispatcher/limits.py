"""Cluster-wide limits of a connection: a send rate and a number of sends in flight.

A connection's `max_per_second` and `max_concurrency` hold for every worker of the
cluster together. Workers coordinate through the database only, each call one short
write transaction:

    acquire(connection, want)
      ├─ PostgreSQL, concurrency limited: lock_bucket   SELECT … FOR UPDATE
      ├─ take        UPDATE connection_buckets … RETURNING: refill the bucket,
      │              grant = min(want, whole tokens, max_concurrency − slots held),
      │              0 while blocked; tokens −= grant
      │              (no row yet: create_bucket, INSERT … ON CONFLICT DO NOTHING, take again)
      ├─ purge_expired   only when take saw expired slots: DELETE them
      └─ hold        grant > 0 and concurrency limited: INSERT connection_slots … RETURNING id
    release(grant)   DELETE its slot row
    penalise(connection, seconds)
                     UPDATE the bucket: blocked until now + seconds, drained, no refill before

The rate is a token bucket refilled at `per_second`, holding at most one second of sends
(at least one token). Concurrency is the sum of unexpired slot rows: a grant holds its
sends until released or until `hold_seconds` pass, so a dead worker's slots free
themselves. Rows are created on first use.

Why the lock on PostgreSQL: an UPDATE that waits for a row lock re-reads the locked row
once it gets it, but a subquery on another table (the slots held) still sees the
snapshot taken when the statement began, before a competitor's slots were committed. So
when concurrency is limited the bucket row is locked by an earlier statement, and the
UPDATE's snapshot then includes every grant made before. The rate alone needs no such
step: everything it reads is in the row being updated. SQLite has one writer at a time
(`begin_write`: BEGIN IMMEDIATE), so each transaction sees all the ones before it.

Times are epoch seconds as floats from an injectable clock. `refilled_epoch` never moves
back, so a worker whose clock is behind refills nothing instead of refilling twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import dialect_name, insert_ignoring_conflicts
from tidings.db.engine import Database, begin_write
from tidings.dispatcher.limit_models import ConnectionBucket, ConnectionSlot

SLOT_RETRY_SECONDS = 0.5
"""How long to wait when only concurrency blocks: slots free when a holder releases,
which no row predicts."""

# Core tables: the hot path runs no ORM machinery.
BUCKETS = cast(Table, ConnectionBucket.__table__)
SLOTS = cast(Table, ConnectionSlot.__table__)
K = BUCKETS.c
S = SLOTS.c


@dataclass(frozen=True, slots=True)
class Grant:
    """`count` sends may start now on `connection_id`; `retry_after` seconds until at least
    one more could be granted. Release it when those sends are done."""

    connection_id: int
    count: int
    retry_after: float
    slot_id: int | None = None  # the slot row holding `count`; None when nothing is held


@dataclass(frozen=True, slots=True)
class Taken:
    """The bucket row after `take`, and what it saw of the slots."""

    granted: int
    tokens: float
    refilled_epoch: float
    blocked_until_epoch: float
    held: int  # slots held by unexpired grants before this one (0 when not counted)
    stale: bool  # expired slot rows exist


class ConnectionLimiter:
    """One worker's handle on the limits shared by the cluster. Never blocks: a call
    grants what it can now and says when to ask again."""

    def __init__(
        self, db: Database, *, holder: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.holder = holder  # this worker's unique id, e.g. host:pid:uuid
        self.clock = clock

    async def acquire(
        self,
        connection_id: int,
        *,
        want: int,
        per_second: float | None,
        max_concurrency: int | None,
        hold_seconds: float,
    ) -> Grant:
        """Grant between 0 and `want` sends that may start now (None: no such limit).

        The grant holds its sends against `max_concurrency` until `release()` or until
        `hold_seconds` pass; make that at least as long as the sends can take.
        """
        if want <= 0:
            return Grant(connection_id, 0, 0.0)
        if per_second is not None and per_second <= 0:
            raise ValueError("per_second must be positive (None: unlimited)")
        if max_concurrency is not None and max_concurrency < 0:
            raise ValueError("max_concurrency must not be negative (None: unlimited)")
        if hold_seconds <= 0:
            raise ValueError("hold_seconds must be positive")
        now = self.clock()
        slot_id = None
        async with self.db.session() as session:
            await begin_write(session)
            taken = await _take_creating(
                session,
                connection_id=connection_id,
                now=now,
                want=want,
                per_second=per_second,
                max_concurrency=max_concurrency,
            )
            if taken.stale:
                await purge_expired(session, connection_id=connection_id, now=now)
            if taken.granted > 0 and max_concurrency is not None:
                slot_id = await hold(
                    session,
                    connection_id=connection_id,
                    holder=self.holder,
                    sends=taken.granted,
                    expires_epoch=now + hold_seconds,
                )
            await session.commit()
        wait = retry_after(taken, now=now, per_second=per_second, max_concurrency=max_concurrency)
        return Grant(connection_id, taken.granted, wait, slot_id)

    async def release(self, grant: Grant) -> None:
        """Free the grant's concurrency slots (nothing to do when it holds none)."""
        if grant.slot_id is None:
            return
        async with self.db.session() as session:
            await begin_write(session)
            await unhold(session, slot_id=grant.slot_id, holder=self.holder)
            await session.commit()

    async def penalise(self, connection_id: int, *, seconds: float) -> None:
        """The provider pushed back (SMTP 421, HTTP 429 with Retry-After): nobody in the
        cluster sends on this connection for `seconds`; then the rate starts again from
        an empty bucket."""
        now = self.clock()
        until = now + seconds
        async with self.db.session() as session:
            await begin_write(session)
            if not await block(session, connection_id=connection_id, until=until):
                await create_bucket(session, connection_id=connection_id, tokens=0.0, now=now)
                await block(session, connection_id=connection_id, until=until)
            await session.commit()


def retry_after(
    taken: Taken, *, now: float, per_second: float | None, max_concurrency: int | None
) -> float:
    """Seconds until at least one more send could be granted, from the bucket as `take`
    left it: the block, the bucket's deficit (refilling from `refilled_epoch`, which a
    penalty puts in the future), and while every slot is held at least a short fixed
    delay (a release, not the clock, frees one)."""
    wait = 0.0
    if taken.blocked_until_epoch > now:
        wait = taken.blocked_until_epoch - now
    if per_second is not None and taken.tokens < 1:
        refill_from = max(taken.refilled_epoch, now)
        wait = max(wait, refill_from - now + (1 - taken.tokens) / per_second)
    if max_concurrency is not None and taken.held + taken.granted >= max_concurrency:
        wait = max(wait, SLOT_RETRY_SECONDS)
    return wait


async def _take_creating(
    session: AsyncSession,
    *,
    connection_id: int,
    now: float,
    want: int,
    per_second: float | None,
    max_concurrency: int | None,
) -> Taken:
    """`take`, creating the bucket row (full) on first use; locked first when needed."""
    for _ in range(2):
        locked = max_concurrency is None or await lock_bucket(session, connection_id=connection_id)
        if locked:
            taken = await take(
                session,
                connection_id=connection_id,
                now=now,
                want=want,
                per_second=per_second,
                max_concurrency=max_concurrency,
            )
            if taken is not None:
                return taken
        if per_second is not None:
            await create_bucket(
                session, connection_id=connection_id, tokens=max(1.0, per_second), now=now
            )
        else:  # no rate known yet: the first rate-limited call refills from empty to full
            await create_bucket(session, connection_id=connection_id, tokens=0.0, now=0.0)
    raise RuntimeError(f"bucket of connection {connection_id} vanished while in use")


# ── statements ───────────────────────────────────────────────────────────────────────


async def lock_bucket(session: AsyncSession, *, connection_id: int) -> bool:
    """PostgreSQL: lock the bucket row until commit, so the next statement's snapshot sees
    every grant committed before. False when there is no row yet. SQLite: nothing to do
    (BEGIN IMMEDIATE already made this the only writer); True."""
    if dialect_name(session) != "postgresql":
        return True
    found = await session.scalar(
        select(K.connection_id).where(K.connection_id == connection_id).with_for_update()
    )
    return found is not None


async def create_bucket(
    session: AsyncSession, *, connection_id: int, tokens: float, now: float
) -> None:
    """Side effect: the connection's bucket row exists (inserted with `tokens`, unless a
    concurrent worker created it first)."""
    await session.execute(
        insert_ignoring_conflicts(session, BUCKETS).values(
            connection_id=connection_id,
            tokens=tokens,
            refilled_epoch=now,
            blocked_until_epoch=0.0,
            last_granted=0,
        )
    )


async def take(
    session: AsyncSession,
    *,
    connection_id: int,
    now: float,
    want: int,
    per_second: float | None,
    max_concurrency: int | None,
) -> Taken | None:
    """One UPDATE … RETURNING of the bucket row. Side effects: tokens refilled up to `now`
    then reduced by the grant; `refilled_epoch` moves up to `now`; `last_granted` = the
    grant. None when the row does not exist yet."""
    at = bindparam("now", now, type_=Float)
    # min(want, whole tokens, free slots), each term present only when that limit is set.
    terms: list[ColumnElement[Any]] = [bindparam("want", want, type_=Integer)]
    # A call without a rate (concurrency only) leaves the token state alone: moving
    # refilled_epoch without crediting tokens would starve the next rate-limited call.
    values: dict[str, Any] = {}
    if per_second is not None:
        values["refilled_epoch"] = _greatest(K.refilled_epoch, at)
        rate = bindparam("rate", per_second, type_=Float)
        capacity = bindparam("capacity", max(1.0, per_second), type_=Float)
        elapsed = case((K.refilled_epoch < at, at - K.refilled_epoch), else_=0.0)
        available = _least(K.tokens + elapsed * rate, capacity)
        terms.append(_whole(available, dialect_name(session)))
    held: ColumnElement[Any] | None = None
    stale: ColumnElement[Any] | None = None
    if max_concurrency is not None:
        held = _held(connection_id, at)
        stale = _expired(connection_id, at)
        terms.append(bindparam("max_concurrency", max_concurrency, type_=Integer) - held)
    smallest = terms[0]
    for term in terms[1:]:
        smallest = _least(smallest, term)
    granted = case((K.blocked_until_epoch > at, 0), (smallest < 0, 0), else_=smallest)
    values["last_granted"] = granted
    if per_second is not None:
        values["tokens"] = available - granted
    returned: list[ColumnElement[Any]] = [
        K.last_granted,
        K.tokens,
        K.refilled_epoch,
        K.blocked_until_epoch,
    ]
    if held is not None and stale is not None:
        returned += [held, stale]
    row = (
        await session.execute(
            update(BUCKETS)
            .where(K.connection_id == connection_id)
            .values(**values)
            .returning(*returned)
        )
    ).one_or_none()
    if row is None:
        return None
    return Taken(
        granted=int(row[0]),
        tokens=float(row[1]),
        refilled_epoch=float(row[2]),
        blocked_until_epoch=float(row[3]),
        held=int(row[4]) if held is not None else 0,
        stale=bool(row[5]) if stale is not None else False,
    )


async def hold(
    session: AsyncSession, *, connection_id: int, holder: str, sends: int, expires_epoch: float
) -> int:
    """Side effect: a slot row holding `sends` of the connection's concurrency until
    released or `expires_epoch`. Returns its id."""
    slot_id = await session.scalar(
        insert(SLOTS)
        .values(
            connection_id=connection_id, holder=holder, sends=sends, expires_epoch=expires_epoch
        )
        .returning(S.id)
    )
    assert slot_id is not None
    return int(slot_id)


async def unhold(session: AsyncSession, *, slot_id: int, holder: str) -> None:
    """Side effect: the holder's slot row is deleted (already gone when it expired and
    was purged: nothing happens)."""
    await session.execute(delete(SLOTS).where(S.id == slot_id, S.holder == holder))


async def purge_expired(session: AsyncSession, *, connection_id: int, now: float) -> None:
    """Side effect: the connection's expired slot rows (holders that died) are deleted.
    Run under the bucket's lock, so two purges never contend for the same rows."""
    await session.execute(
        delete(SLOTS).where(S.connection_id == connection_id, S.expires_epoch <= now)
    )


async def block(session: AsyncSession, *, connection_id: int, until: float) -> bool:
    """Side effects: no grant before `until` (an earlier block is extended, never
    shortened); the bucket is drained and refills only from then. False when the row does
    not exist yet."""
    at = bindparam("until", until, type_=Float)
    result = await session.execute(
        update(BUCKETS)
        .where(K.connection_id == connection_id)
        .values(
            blocked_until_epoch=_greatest(K.blocked_until_epoch, at),
            refilled_epoch=_greatest(K.refilled_epoch, at),
            tokens=0.0,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ── expressions both dialects accept (CASE, not LEAST/GREATEST) ──────────────────────


def _least(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((a <= b, a), else_=b)


def _greatest(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((a >= b, a), else_=b)


def _whole(value: ColumnElement[Any], dialect: str) -> ColumnElement[int]:
    """The whole part of a non-negative float. The one dialect difference: PostgreSQL
    rounds a float cast to integer, SQLite truncates (and may lack floor())."""
    if dialect == "postgresql":
        return func.floor(value).cast(Integer)
    return value.cast(Integer)


def _held(connection_id: int, at: ColumnElement[float]) -> ColumnElement[Any]:
    """Sends held on the connection by unexpired grants, every holder together."""
    return (
        select(func.coalesce(func.sum(S.sends), 0))
        .where(S.connection_id == connection_id, S.expires_epoch > at)
        .scalar_subquery()
    )


def _expired(connection_id: int, at: ColumnElement[float]) -> ColumnElement[bool]:
    return exists().where(S.connection_id == connection_id, S.expires_epoch <= at)
