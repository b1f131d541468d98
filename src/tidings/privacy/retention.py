"""Retention: what each org keeps, and for how long (`orgs.models.Org.*_retention_days`).

    RetentionKeeper.run, every TIDINGS_RETENTION_SWEEP_SECONDS: purge(now) per org
      content   sink copies older than content_retention_days deleted; finished messages'
                `variables` emptied
      events    events older than event_retention_days deleted, with the webhook
                deliveries made of them
      messages  finished messages older than message_retention_days deleted, with their
                links, events, sink copies and kept attempts (`message_attempts`)

Each purge walks the table's (org_id, id) index from the oldest row in batches of
`batch` ids, each batch read in a read transaction and then written in a short write
transaction of its own: sending goes on between them (SQLite's writers take turns per
transaction; on PostgreSQL only finished rows are touched, never the queued or leased ones
the dispatcher claims). Ids grow with time, so the walk stops at the first row younger
than the cut-off. Messages not yet finished are stepped over: the deleting walks start
from the oldest row each round and find them again once finished. The content walk leaves
rows behind (emptied, not deleted), so where it stopped is kept in memory per org and it
starts there next round; after a restart it starts from the oldest again, which also
catches a message it stepped over while unfinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, null, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.models import SinkMessage
from tidings.db.base import utcnow
from tidings.db.dialect import alone
from tidings.db.engine import Database
from tidings.events.models import Event
from tidings.links.models import Link
from tidings.orgs.models import Org
from tidings.outbox.models import Message, MessageAttempt
from tidings.outbox.status import UNFINISHED
from tidings.webhooks.models import WebhookDelivery

log = logging.getLogger(__name__)

UNFINISHED_VALUES = sorted(s.value for s in UNFINISHED)
PURGE_LOCK = 7212364419  # one worker purges at a time (db.dialect.alone)


@dataclass(slots=True)
class Purged:
    contents: int = 0  # sink copies deleted + messages' variables emptied
    events: int = 0
    messages: int = 0
    # Seconds from a batch's first statement to its commit: the longest that writers
    # (the dispatcher on SQLite) wait for the purge.
    longest_batch: float = 0.0

    @property
    def total(self) -> int:
        return self.contents + self.events + self.messages


@dataclass(slots=True)
class _Walk:
    """Where a walk over one org's table stands (`purge`)."""

    after: int = 0
    done: bool = False


async def _next_ids(
    db: Database,
    model: Any,
    *,
    org_id: int,
    walk: _Walk,
    before: datetime,
    batch: int,
    wanted: Callable[[Any], bool] = lambda row: True,
    extra: tuple[Any, ...] = (),
) -> list[int]:
    """The next batch of the org's rows older than `before` that `wanted` keeps, reading
    `batch` rows in id order from `walk.after` (read transaction)."""
    async with db.transaction(write=False) as session:
        rows = (
            await session.execute(
                select(model.id, model.created_at, *extra)
                .where(model.org_id == org_id, model.id > walk.after)
                .order_by(model.id)
                .limit(batch)
            )
        ).all()
    ids = []
    for row in rows:
        if row.created_at >= before:
            walk.done = True
            break
        walk.after = row.id
        if wanted(row):
            ids.append(row.id)
    if len(rows) < batch:
        walk.done = True
    return ids


async def _each_batch(
    db: Database,
    model: Any,
    *,
    org_id: int,
    before: datetime,
    batch: int,
    write: Callable[[AsyncSession, list[int]], Any],
    purged: Purged,
    walk: _Walk | None = None,
    wanted: Callable[[Any], bool] = lambda row: True,
    extra: tuple[Any, ...] = (),
) -> int:
    walk = walk or _Walk()
    walk.done = False
    done = 0
    while not walk.done:
        ids = await _next_ids(
            db, model, org_id=org_id, walk=walk, before=before, batch=batch, wanted=wanted,
            extra=extra,
        )  # fmt: skip
        if ids:
            async with db.transaction() as session:
                started = time.perf_counter()  # holding the write turn from here
                await write(session, ids)
            purged.longest_batch = max(purged.longest_batch, time.perf_counter() - started)
            done += len(ids)
    return done


def _finished(row: Any) -> bool:
    return bool(row.status not in UNFINISHED_VALUES)


async def _drop_events(session: AsyncSession, where: ColumnElement[bool]) -> None:
    """Events matching `where`, and the webhook deliveries made of them."""
    doomed = select(Event.id).where(where)
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.event_id.in_(doomed)))
    await session.execute(delete(Event).where(where))


async def _drop_messages(session: AsyncSession, ids: list[int]) -> None:
    await _drop_events(session, Event.message_id.in_(ids))
    await session.execute(delete(Link).where(Link.message_id.in_(ids)))
    await session.execute(delete(SinkMessage).where(SinkMessage.message_id.in_(ids)))
    await session.execute(delete(MessageAttempt).where(MessageAttempt.message_id.in_(ids)))
    await session.execute(delete(Message).where(Message.id.in_(ids)))


async def _empty_variables(session: AsyncSession, ids: list[int]) -> None:
    await session.execute(update(Message).where(Message.id.in_(ids)).values(variables=null()))


async def _drop_sink(session: AsyncSession, ids: list[int]) -> None:
    await session.execute(delete(SinkMessage).where(SinkMessage.id.in_(ids)))


async def _drop_event_ids(session: AsyncSession, ids: list[int]) -> None:
    await _drop_events(session, Event.id.in_(ids))


@dataclass(slots=True)
class Purger:
    """Runs the purges; remembers where each org's content walk stopped."""

    db: Database
    batch: int = 1_000
    content_walks: dict[int, _Walk] = field(default_factory=dict)

    async def purge(self, *, now: datetime) -> Purged:
        """One round over every org with a retention (see the module docstring); nothing
        when another worker's round is running (PostgreSQL), which purges the same rows."""
        async with alone(self.db.engine, PURGE_LOCK) as mine:
            return await self._purge(now=now) if mine else Purged()

    async def _purge(self, *, now: datetime) -> Purged:
        async with self.db.transaction(write=False) as session:
            orgs = (
                await session.execute(
                    select(
                        Org.id,
                        Org.content_retention_days,
                        Org.event_retention_days,
                        Org.message_retention_days,
                    ).order_by(Org.id)
                )
            ).all()
        purged = Purged()
        for org_id, content_days, event_days, message_days in orgs:
            if message_days is not None:
                purged.messages += await _each_batch(
                    self.db, Message, org_id=org_id, before=now - timedelta(days=message_days),
                    batch=self.batch, purged=purged, write=_drop_messages, wanted=_finished,
                    extra=(Message.status,),
                )  # fmt: skip
            if event_days is not None:
                purged.events += await _each_batch(
                    self.db, Event, org_id=org_id, before=now - timedelta(days=event_days),
                    batch=self.batch, purged=purged, write=_drop_event_ids,
                )  # fmt: skip
            if content_days is not None:
                before = now - timedelta(days=content_days)
                purged.contents += await _each_batch(
                    self.db, SinkMessage, org_id=org_id, before=before, batch=self.batch,
                    purged=purged, write=_drop_sink,
                )  # fmt: skip
                purged.contents += await _each_batch(
                    self.db, Message, org_id=org_id, before=before, batch=self.batch,
                    purged=purged, write=_empty_variables,
                    walk=self.content_walks.setdefault(org_id, _Walk()),
                    wanted=lambda row: _finished(row) and row.variables is not None,
                    extra=(Message.status, Message.variables),
                )  # fmt: skip
        return purged


class RetentionKeeper:
    """Purges expired data every `interval` seconds until `stop` (one of the worker's
    loops, `dispatcher.run.build_loops`). `clock` gives the time (tests move a Clock)."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float,
        batch: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.purger = Purger(db, batch=batch)
        self.interval = interval
        self.clock = clock

    async def tick(self) -> Purged:
        return await self.purger.purge(now=self.clock())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                purged = await self.tick()
            except Exception:  # a database hiccup must not end the loop
                log.exception("retention purge")
            else:
                log.log(
                    logging.INFO if purged.total else logging.DEBUG,
                    "retention purge: %d contents, %d events, %d messages in %.3f s"
                    " (longest batch %.3f s)",
                    purged.contents, purged.events, purged.messages,
                    time.perf_counter() - started, purged.longest_batch,
                )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)
