"""Housekeeping of delivery reports, beside the dispatcher: reports that overtook their
message's outcome, and the retention of refused reports.

    ReportsKeeper.run, every SWEEP_SECONDS:
      sweep:  pending_reports whose provider id is now on a message of their org, whose
              message has left queued/sending, or older than `hold` (a batch, oldest
              first; PostgreSQL: SKIP LOCKED)
                → service.apply (found: recorded; not found: a `stale` refusal), deleted
              the others are left for the next sweep
      prune:  rejected_reports older than the retention, in batches of PRUNE_BATCH

A report waits only while its message's outcome may still be written: the dispatcher
writes a batch's outcomes at most one lease (`TIDINGS_DISPATCHER_LEASE_SECONDS`) after
claiming it, after which a lost lease is claimed and sent again (under a new provider id,
so the old one never appears). `hold_for(lease)` leaves twice that, and at least HOLD.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import delete, exists, or_, select

from tidings.connections.models import Connection
from tidings.db.availability import unavailable
from tidings.db.base import utcnow
from tidings.db.dialect import for_update
from tidings.db.engine import Database
from tidings.outbox.models import Message
from tidings.outbox.status import UNSENT
from tidings.reports import service
from tidings.reports.models import PendingReport, RejectedReport

log = logging.getLogger(__name__)

SWEEP_SECONDS: Final = 5.0
HOLD: Final = timedelta(minutes=15)
SWEEP_BATCH: Final = 500
PRUNE_BATCH: Final = 1_000


def hold_for(lease: timedelta) -> timedelta:
    """How long a pending report waits for its provider id (see the module docstring)."""
    return max(HOLD, 2 * lease)


@dataclass(frozen=True, slots=True)
class Swept:
    applied: int  # found their message: recorded
    stale: int  # waited `hold` in vain (or found a message too old, as any report)

    @property
    def swept(self) -> int:
        return self.applied + self.stale


async def sweep(
    db: Database, *, hold: timedelta, soft_bounce_limit: int, now: datetime | None = None
) -> Swept:
    """One batch, one transaction: apply the pending reports whose message's outcome is
    now written (their provider id is on a message of their org, or their message left
    `queued`/`sending`), and those older than `hold`: applied if their message is found,
    else stale. The others are not even read: they wait for the next sweep."""
    now = now or utcnow()
    p, m = PendingReport, Message
    id_recorded = exists().where(m.org_id == p.org_id, m.provider_id == p.provider_id)
    sent = exists().where(m.id == p.message_id, m.status.not_in(sorted(UNSENT)))
    ready = or_(id_recorded, sent, p.created_at < now - hold)
    query = select(p).where(ready).order_by(p.id).limit(SWEEP_BATCH)
    # Read first: an idle sweep every few seconds must not take SQLite's write lock.
    async with db.transaction(write=False) as session:
        if await session.scalar(select(query.exists())) is not True:
            return Swept(applied=0, stale=0)
    async with db.transaction() as session:
        query = for_update(session, query, of=p, skip_locked=True)  # workers sweep apart
        rows = list(await session.scalars(query))
        groups: dict[tuple[int, int, str], list[PendingReport]] = defaultdict(list)
        for row in rows:
            groups[(row.org_id, row.connection_id, row.source)].append(row)
        applied = stale = 0
        for (org_id, connection_id, source), group in sorted(groups.items()):
            channel = await session.scalar(
                select(Connection.channel).where(Connection.id == connection_id)
            )
            if channel is None:  # deleted meanwhile; its rows go with it
                continue
            # Waited enough: found → recorded (a message still unsent after `hold` too);
            # not found (so too old) → stale.
            outcome = await service.apply(
                session, org_id=org_id, channel=channel, connection_id=connection_id,
                source=source, reports=[service.report_from_json(r.report) for r in group],
                soft_bounce_limit=soft_bounce_limit, may_wait=False,
            )  # fmt: skip
            applied += outcome.accepted
            stale += outcome.stale
        if rows:
            await session.execute(delete(p).where(p.id.in_([row.id for row in rows])))
    return Swept(applied=applied, stale=stale)


async def prune_rejected(db: Database, *, before: datetime) -> int:
    """Delete refused reports stored before `before`, PRUNE_BATCH per transaction (so a
    flood of forgeries never makes one long delete). Returns how many."""
    pruned = 0
    oldest = (
        select(RejectedReport.id)
        .where(RejectedReport.created_at < before)
        .order_by(RejectedReport.created_at)
        .limit(PRUNE_BATCH)
    )
    while True:
        async with db.transaction(write=False) as session:
            ids = list(await session.scalars(oldest))  # read first, as in `sweep`
        if ids:
            async with db.transaction() as session:
                await session.execute(delete(RejectedReport).where(RejectedReport.id.in_(ids)))
        pruned += len(ids)
        if len(ids) < PRUNE_BATCH:
            return pruned


class ReportsKeeper:
    """Sweeps pending reports and prunes refused ones every `interval` seconds until
    `stop` (one of the worker's loops, `dispatcher.run.build_loops`)."""

    def __init__(
        self,
        db: Database,
        *,
        hold: timedelta,
        retention: timedelta,
        soft_bounce_limit: int,
        interval: float = SWEEP_SECONDS,
    ) -> None:
        self.db = db
        self.hold = hold
        self.retention = retention
        self.soft_bounce_limit = soft_bounce_limit
        self.interval = interval

    async def tick(self) -> None:
        """One round: sweep until a batch comes back short, then prune."""
        while True:  # a backlog drains batch by batch, each its own transaction
            swept = await sweep(self.db, hold=self.hold, soft_bounce_limit=self.soft_bounce_limit)
            if swept.swept < SWEEP_BATCH:
                break
        await prune_rejected(self.db, before=utcnow() - self.retention)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await self.tick()
            except Exception as exc:  # a database hiccup must not end the loop
                if unavailable(exc):
                    log.warning("report housekeeping: the database is unavailable (%r)", exc)
                else:
                    log.exception("delivery report housekeeping")
            else:
                seconds = time.perf_counter() - started
                log.debug("delivery report housekeeping done in %.3f s", seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
