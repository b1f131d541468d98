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
sends until released or until `hold_seconds` pass unless renewed — the worker's heartbeat
renews the grants it holds (`held`), so a dead worker's slots free themselves within
`hold_seconds` of its last heartbeat, and a live one keeps them however long its sends
take. Rows are created on first use.

Why the lock on PostgreSQL: an UPDATE that waits for a row lock re-reads the locked row
once it gets it, but a subquery on another table (the slots held) still sees the
snapshot taken when the statement began, before a competitor's slots were committed. So
when concurrency is limited the bucket row is locked by an earlier statement, and the
UPDATE's snapshot then includes every grant made before. The rate alone needs no such
step: everything it reads is in the row being updated. SQLite has one writer at a time
(`begin_write`: BEGIN IMMEDIATE), so each transaction sees all the ones before it.

The statements are in `dispatcher/limit_queries.py`. Times are epoch seconds as floats
from an injectable clock. `refilled_epoch` never moves
back, so a worker whose clock is behind refills nothing instead of refilling twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.availability import unavailable
from tidings.db.engine import Database
from tidings.dispatcher.limit_queries import (
    Taken,
    block,
    blocked_until,
    create_bucket,
    hold,
    lock_bucket,
    purge_expired,
    take,
    unhold,
)

log = logging.getLogger(__name__)

SLOT_RETRY_SECONDS = 0.5
"""How long to wait when only concurrency blocks: slots free when a holder releases,
which no row predicts."""


@dataclass(frozen=True, slots=True)
class Grant:
    """`count` sends may start now on `connection_id`; `retry_after` seconds until at least
    one more could be granted. Release it when those sends are done."""

    connection_id: int
    count: int
    retry_after: float
    slot_id: int | None = None  # the slot row holding `count`; None when nothing is held


class ConnectionLimiter:
    """One worker's handle on the limits shared by the cluster. Never blocks: a call
    grants what it can now and says when to ask again."""

    def __init__(
        self, db: Database, *, holder: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.holder = holder  # this worker's unique id, e.g. host:pid:uuid
        self.clock = clock
        self._held: set[int] = set()  # slot rows of grants not yet released

    @property
    def held(self) -> list[int]:
        """The slot rows of the grants this worker holds: what its heartbeat renews."""
        return sorted(self._held)

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
        async with self.db.transaction() as session:
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
        if slot_id is not None:
            self._held.add(slot_id)
        wait = retry_after(taken, now=now, per_second=per_second, max_concurrency=max_concurrency)
        return Grant(connection_id, taken.granted, wait, slot_id)

    async def release(self, grant: Grant) -> None:
        """Free the grant's concurrency slots (nothing to do when it holds none). While the
        database cannot be reached the row stays, no longer renewed, and expires by
        itself: a release never fails the sends it follows."""
        if grant.slot_id is None:
            return
        self._held.discard(grant.slot_id)
        try:
            async with self.db.transaction() as session:
                await unhold(session, slot_id=grant.slot_id, holder=self.holder)
        except Exception as exc:
            if not unavailable(exc):
                raise
            log.warning("slot %d of connection %d left to expire: %r", grant.slot_id,
                        grant.connection_id, exc)  # fmt: skip

    async def blocked_for(self, connection_id: int) -> float:
        """Seconds until a push-back on the connection ends (0.0: none now), read again
        between the chunks of a batch so that a push-back another worker was told of stops
        this one's sends too, not only its next batch."""
        async with self.db.transaction(write=False) as session:
            until = await blocked_until(session, connection_id=connection_id)
        return max(0.0, until - self.clock())

    async def penalise(self, connection_id: int, *, seconds: float) -> None:
        """The provider pushed back (SMTP 421, HTTP 429 with Retry-After): nobody in the
        cluster sends on this connection for `seconds`; then the rate starts again from
        an empty bucket."""
        now = self.clock()
        until = now + seconds
        async with self.db.transaction() as session:
            if not await block(session, connection_id=connection_id, until=until):
                await create_bucket(session, connection_id=connection_id, tokens=0.0, now=now)
                await block(session, connection_id=connection_id, until=until)


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
