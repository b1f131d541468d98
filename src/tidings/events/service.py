"""Events: what happened to messages after sending, and the counters derived from them.

    record_events(batch) ── INSERT … ON CONFLICT DO NOTHING RETURNING (only new events)
        └─ per type of the new human events:
             UPDATE messages SET <type>_at = first event's time WHERE <type>_at IS NULL
               RETURNING the messages whose timestamp was set now
             UPDATE messages SET status = … WHERE status is lower (precedence below)
        └─ one UPDATE per broadcast: each counter + the messages set now

Idempotent: an event already stored (same org, source, external id) is not new, and a
timestamp already set is not set again, so replaying reports changes nothing. Order-
independent: timestamps are set once and status only moves up the precedence, so a late
`delivered` after `clicked` moves nothing back. Concurrent: on PostgreSQL the unique
index makes a second inserter of the same event wait and then insert nothing, and the
`IS NULL` re-check after a row lock lets only one transaction set a timestamp, and a
batch locks its messages first, in id order, so batches never deadlock; SQLite has one
writer at a time (`begin_write`). Counters therefore move exactly once per
message and kind.

Status precedence (events never touch queued, sending, held, failed, skipped, cancelled):
`sent` < `delivered` < `bounced` | `complained`; the last two are terminal, the first to
arrive wins. Opens, clicks and plays set their timestamps and counters, not the status.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.counters import add_to_counters
from tidings.db.base import utcnow
from tidings.db.dialect import insert_ignoring_conflicts, lock_rows
from tidings.db.owned import owned_page
from tidings.events.bots import bot_reason
from tidings.events.models import Event
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus, sources
from tidings.webhooks import service as webhooks

EVENTS = cast(Table, Event.__table__)
MESSAGES = cast(Table, Message.__table__)
E = EVENTS.c
M = MESSAGES.c
RETURNED = (E.id, E.org_id, E.message_id, E.broadcast_id, E.campaign_id, E.type, E.source,
            E.is_bot, E.is_test, E.data, E.occurred_at, E.created_at)  # fmt: skip

TIMESTAMPS: Final = {
    "delivered": "delivered_at",
    "bounced": "bounced_at",
    "opened": "opened_at",
    "clicked": "clicked_at",
    "played": "played_at",
    "complained": "complained_at",
    "unsubscribed": "unsubscribed_at",
}
"""The message timestamp each kind of human event sets, once."""

COUNTERS: Final = {
    "delivered": "delivered_count",
    "bounced": "failed_count",  # a bounce is a failure found after sending
    "opened": "opened_count",
    "clicked": "clicked_count",
    "played": "played_count",
    "complained": "complained_count",
    "unsubscribed": "unsubscribed_count",
}
"""The broadcast counter that moves by one when a message's timestamp is first set.

A bounce moves `failed_count` (and leaves `sent_count` as it was: the message was
handed over), unless the dispatcher had already failed that message."""

STATUS_AFTER: Final = {
    "delivered": MessageStatus.DELIVERED,
    "bounced": MessageStatus.BOUNCED,
    "complained": MessageStatus.COMPLAINED,
}
"""Event type → the status it moves a message to (from the statuses the message
transition table allows: `outbox.status.sources`)."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to record. `external_id` makes it idempotent within (org, source);
    None means every recording is a new event."""

    org_id: int
    type: str
    source: str
    external_id: str | None
    message_id: int | None = None
    broadcast_id: int | None = None
    campaign_id: int | None = None
    is_bot: bool = False
    data: dict[str, Any] | None = None
    occurred_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class Hit:
    """A request on a public tracking URL, as the bot rule needs it."""

    method: str
    user_agent: str | None
    client_ip: str | None


async def record_events(session: AsyncSession, *, events: Sequence[NewEvent]) -> list[Event]:
    """Store `events`, derive message timestamps, statuses and broadcast counters from
    the new ones (see the module docstring), and queue their outbound webhook deliveries.
    A query helper, in the caller's write transaction. Returns the events that were new
    (detached rows, with their ids)."""
    if not events:
        return []
    now = utcnow()
    message_ids = sorted({e.message_id for e in events if e.message_id})
    await _lock_messages(session, message_ids)
    tests = await _test_messages(session, message_ids)
    rows = sorted(
        (
            {
                "org_id": e.org_id, "type": e.type, "source": e.source,
                "external_id": e.external_id, "message_id": e.message_id,
                "broadcast_id": e.broadcast_id, "campaign_id": e.campaign_id,
                "is_bot": e.is_bot, "is_test": e.message_id in tests, "data": e.data,
                "occurred_at": e.occurred_at, "created_at": now,
            }
            for e in events
        ),
        key=lambda r: (r["org_id"], r["source"], r["external_id"] or ""),
    )  # fmt: skip
    inserted = await session.execute(
        insert_ignoring_conflicts(session, EVENTS).returning(*RETURNED), rows
    )
    new = [Event(**row._mapping) for row in inserted]
    human: dict[str, set[int]] = {}
    for row in new:
        if not row.is_bot and row.message_id is not None and row.type in TIMESTAMPS:
            human.setdefault(row.type, set()).add(row.message_id)
    deltas: dict[int, dict[str, int]] = {}
    for kind in sorted(human):
        set_now = await _set_first(session, kind=kind, message_ids=sorted(human[kind]))
        for _message_id, broadcast_id, status in set_now:
            if broadcast_id is None or (kind == "bounced" and status == MessageStatus.FAILED):
                continue
            counters = deltas.setdefault(broadcast_id, {})
            counters[COUNTERS[kind]] = counters.get(COUNTERS[kind], 0) + 1
        if kind in STATUS_AFTER:
            await _move_status(session, kind=kind, message_ids=sorted(human[kind]))
    await add_to_counters(session, deltas=deltas)
    await webhooks.enqueue_deliveries(session, events=new)
    return new


async def _lock_messages(session: AsyncSession, message_ids: list[int]) -> None:
    """PostgreSQL: lock the batch's messages first, in id order. Two batches touching the
    same messages then queue here, whole, instead of each locking some of them (by
    event key, then by message for each kind) and deadlocking. SQLite: one writer at a
    time already."""
    if message_ids:
        await lock_rows(session, select(M.id).where(M.id.in_(message_ids)).order_by(M.id))


async def _test_messages(session: AsyncSession, message_ids: list[int]) -> set[int]:
    """Which of these messages a test key sent (read only): their events are marked."""
    if not message_ids:
        return set()
    found = await session.scalars(select(M.id).where(M.id.in_(message_ids), M.is_test))
    return set(found)


async def _set_first(
    session: AsyncSession, *, kind: str, message_ids: list[int]
) -> list[tuple[int, int | None, str]]:
    """Side effect: `<kind>_at` of these messages, where still NULL, becomes the time of
    their earliest human `kind` event. Returns (id, broadcast id, status) of those set."""
    column = M[TIMESTAMPS[kind]]
    first = (
        select(func.min(E.occurred_at))
        .where(E.message_id == M.id, E.type == kind, E.is_bot.is_(False))
        .correlate(MESSAGES)
        .scalar_subquery()
    )
    result = await session.execute(
        update(MESSAGES)
        .where(M.id.in_(message_ids), column.is_(None))
        .values({column: first})
        .returning(M.id, M.broadcast_id, M.status)
    )
    return [(row.id, row.broadcast_id, row.status) for row in result]


async def _move_status(session: AsyncSession, *, kind: str, message_ids: list[int]) -> None:
    """Side effect: these messages move up to the kind's status, never down."""
    status = STATUS_AFTER[kind]
    below = sorted(sources(status))
    await session.execute(
        update(MESSAGES).where(M.id.in_(message_ids), M.status.in_(below)).values(status=status)
    )


async def track(
    session: AsyncSession,
    *,
    message_id: int,
    kind: str,
    hit: Hit,
    key: str = "",
    data: Mapping[str, Any] | None = None,
) -> bool:
    """Record an open, click or play of a message from a tracking hit, flagging bots.

    A query helper, in the caller's write transaction. One human and one bot event are
    kept per message, kind and `key` (a link's position for clicks):
    reopening or clicking again is not a new event, so the table grows with recipients,
    not with hits. False when there is no such message."""
    message = (
        await session.execute(
            select(M.org_id, M.broadcast_id, M.campaign_id, M.sent_at).where(M.id == message_id)
        )
    ).first()
    if message is None:
        return False
    now = utcnow()
    reason = bot_reason(
        method=hit.method,
        user_agent=hit.user_agent,
        client_ip=hit.client_ip,
        sent_at=message.sent_at,
        now=now,
    )
    details: dict[str, Any] = dict(data or {})
    if hit.user_agent:
        details["user_agent"] = hit.user_agent[:300]
    if reason is not None:
        details["bot"] = reason
    external = f"{kind}:{message_id}" + (f":{key}" if key else "") + (":bot" if reason else "")
    await record_events(
        session,
        events=[
            NewEvent(
                org_id=message.org_id,
                type=kind,
                source="tracking",
                external_id=external,
                message_id=message_id,
                broadcast_id=message.broadcast_id,
                campaign_id=message.campaign_id,
                is_bot=reason is not None,
                data=details or None,
                occurred_at=now,
            )
        ],
    )
    return True


async def list_events(
    session: AsyncSession,
    *,
    org_id: int,
    after_id: int | None,
    limit: int,
    message_id: int | None = None,
    broadcast_id: int | None = None,
    types: Iterable[str] = (),
    message_ids: Iterable[int] | None = None,
) -> list[Event]:
    """A page of the org's events in id order (read only); `message_ids`: of any of
    these messages (a contact's history)."""
    query = owned_page(Event, org_id=org_id, after_id=after_id, limit=limit)
    if message_id is not None:
        query = query.where(Event.message_id == message_id)
    if message_ids is not None:
        query = query.where(Event.message_id.in_(list(message_ids)))
    if broadcast_id is not None:
        query = query.where(Event.broadcast_id == broadcast_id)
    wanted = list(types)
    if wanted:
        query = query.where(Event.type.in_(wanted))
    return list(await session.scalars(query))
