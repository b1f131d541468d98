"""Every statement of the sending hot path, each with the side effects it has.

The messages table is the queue. A row moves `queued` → `sending` (claimed, leased) →
`sent` | `failed`, or back to `queued` with a later `due_at` for a retry. `held` rows
belong to a paused broadcast; `skipped` and `cancelled` rows were never sent. The
SQLite/PostgreSQL difference is one line, in `claim`: PostgreSQL takes row locks with
SKIP LOCKED so any number of workers claim disjoint batches; SQLite has one writer at a
time (BEGIN IMMEDIATE), so the same UPDATE … RETURNING is already exclusive.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Table,
    and_,
    bindparam,
    case,
    exists,
    false,
    func,
    literal,
    null,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import operators
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.types import TypeEngine

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import BroadcastStatus
from tidings.campaigns.models import Campaign
from tidings.campaigns.recipients import MARKETING_ONLY
from tidings.credits import service as credits
from tidings.db.dialect import (
    dialect_name,
    insert_selected_ignoring_conflicts,
    json_rows,
    one_of,
)
from tidings.events.models import Event
from tidings.links.models import Link
from tidings.messages.models import Message
from tidings.suppressions.models import Suppression
from tidings.webhooks import service as webhooks
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.schemas import ALL as WEBHOOK_ALL

UNFINISHED = ("queued", "sending", "held")
# Core tables: the hot path runs no ORM machinery (no identity map, no unit of work).
MESSAGES = cast(Table, Message.__table__)
BROADCASTS = cast(Table, Broadcast.__table__)
M = MESSAGES.c
B = BROADCASTS.c
CAMPAIGNS = cast(Table, Campaign.__table__)
SUPPRESSIONS = cast(Table, Suppression.__table__)
EVENTS = cast(Table, Event.__table__)
E = EVENTS.c
OUTCOME_SOURCE = "dispatcher"
"""The source of the `sent` and `failed` events the dispatcher records."""


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased message, with what sending it needs from its own row."""

    id: int
    org_id: int
    broadcast_id: int | None
    campaign_id: int | None
    contact_id: int | None
    channel: str
    recipient: str | None
    variables: dict[str, Any] | None
    attempts: int
    is_test: bool = False
    cost: int = 0  # micro-credits reserved: given back if it fails


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message. `retry_at` set means: queue it again then."""

    message_id: int
    broadcast_id: int | None
    status: str  # "sent" | "failed" | "queued" (retry)
    reason: str | None = None
    provider_id: str | None = None
    segments: int | None = None
    retry_at: datetime | None = None
    deferred: bool = False  # not tried (the connection's limits): the attempt is given back


async def claim(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due messages, oldest first. Side effects: status → sending,
    lease_until set, attempts + 1. Caller commits at once; the lease protects the rows."""
    due = select(M.id).where(M.status == "queued", M.due_at <= now).order_by(M.due_at).limit(limit)
    if dialect_name(session) == "postgresql":
        due = due.with_for_update(skip_locked=True)
    statement = (
        update(MESSAGES)
        .where(M.id.in_(due.scalar_subquery()))
        .values(status="sending", lease_until=lease_until, attempts=M.attempts + 1)
        .returning(
            M.id,
            M.org_id,
            M.broadcast_id,
            M.campaign_id,
            M.contact_id,
            M.channel,
            M.recipient,
            M.variables,
            M.attempts,
            M.is_test,
            M.cost,
        )
    )
    rows = await session.execute(statement)
    return [Claimed(*row) for row in rows]


async def skip_suppressed(
    session: AsyncSession, *, claimed: Sequence[Claimed], now: datetime
) -> list[Claimed]:
    """The claimed messages still to send: those whose recipient is on the org's
    suppression list (with a reason that holds for the campaign's purpose, as in
    `campaigns/recipients.address_or_skip`) end `skipped`, "suppressed: <reason>".

    One UPDATE … RETURNING per batch, probing the unique (org, channel, address) index
    once per message. Only when it skips any: attempts go back down (none was used), the
    broadcasts' skipped_count grows and recipients_count shrinks by them, and their
    reserved credit is released (one entry per org). Run in the claim's transaction.
    """
    if not claimed:
        return []
    listed = SUPPRESSIONS.alias("listed")
    campaign = CAMPAIGNS.alias("campaign")
    match = (
        (listed.c.org_id == M.org_id)
        & (listed.c.channel == M.channel)
        & (listed.c.address == M.recipient)
        & or_(
            listed.c.reason.not_in(sorted(MARKETING_ONLY)),
            exists().where(campaign.c.id == M.campaign_id, campaign.c.purpose == "marketing"),
        )
    )
    reason = select(listed.c.reason).where(match).limit(1).scalar_subquery()
    rows = await session.execute(
        update(MESSAGES)
        .where(
            one_of(session, M.id, [c.id for c in claimed]),
            M.status == "sending",
            exists().where(match),
        )
        .values(
            status="skipped",
            reason=literal("suppressed: ") + reason,
            finished_at=now,
            lease_until=None,
            attempts=M.attempts - 1,
        )
        .returning(M.id)
    )
    skipped = set(rows.scalars())
    if not skipped:
        return list(claimed)
    deltas: dict[int, dict[str, int]] = {}
    refunds: dict[int, int] = {}
    for c in claimed:
        if c.id not in skipped:
            continue
        if c.broadcast_id is not None:
            counters = deltas.setdefault(
                c.broadcast_id, {"skipped_count": 0, "recipients_count": 0}
            )
            counters["skipped_count"] += 1
            counters["recipients_count"] -= 1
        if c.cost > 0:
            refunds[c.org_id] = refunds.get(c.org_id, 0) + c.cost
    await add_to_counters(session, deltas=deltas)
    for org_id, amount in sorted(refunds.items()):
        await credits.release(
            session, org_id=org_id, amount=amount, reference=None, note="suppressed messages"
        )
    return [c for c in claimed if c.id not in skipped]


async def record(
    session: AsyncSession,
    *,
    outcomes: Sequence[Outcome],
    lease_until: datetime,
    now: datetime,
    links: Sequence[Mapping[str, Any]] = (),
    charged: Mapping[int, Claimed] = {},
) -> int:
    """Write a batch of outcomes and move the broadcasts' counters by the batch's totals.

    Only messages this worker still holds — status `sending` with the very lease it
    claimed them with — are written and counted: a worker that was too slow, whose
    rows another worker reclaimed, changes nothing and counts nothing twice. Side
    effects: those messages leave `sending`; the final ones (sent, failed) get a `sent`
    or `failed` event each (source "dispatcher", external id "<type>:<message id>", so
    never twice); sent_count / failed_count grow by one UPDATE per broadcast, never one
    per message; webhook endpoints subscribed to `sent` or `failed` get a delivery of
    each; the batch's tracked links are stored (the originals `/l/{token}`
    redirects to); failed messages among `charged` (the claimed ones that had a cost) give
    their reservation back, one ledger entry per org and batch. Returns how many messages
    were written.

    The final outcomes, however many, are one UPDATE … FROM a JSON array of rows
    (PostgreSQL `jsonb_to_recordset`, SQLite `json_each`), one INSERT … SELECT of
    their events and one of their links (from a JSON array too): a fixed number of
    statements per batch, none per message.
    """
    finals = [o for o in outcomes if o.retry_at is None]
    requeued = [o for o in outcomes if o.retry_at is not None]
    written: dict[int, tuple[int | None, str, int]] = {}  # id → (broadcast, status, org)
    if finals:
        written = await _write_finals(session, finals=finals, lease_until=lease_until, now=now)
        await _add_outcome_events(session, message_ids=sorted(written), now=now)
        await _notify_outcome_events(session, written=written)
    owned: set[int] = set()
    if requeued:
        held = select(M.id).where(
            M.id.in_([o.message_id for o in requeued]),
            M.status == "sending",
            M.lease_until == lease_until,
        )
        if dialect_name(session) == "postgresql":
            held = held.with_for_update()
        owned = set((await session.execute(held)).scalars())
    retries = [o for o in requeued if o.message_id in owned and not o.deferred]
    deferrals = [o for o in requeued if o.message_id in owned and o.deferred]
    if retries:
        await session.execute(
            update(MESSAGES)
            .where(M.id == bindparam("mid"), M.status == "sending")
            .values(
                status="queued",
                due_at=bindparam("due"),
                reason=bindparam("why"),
                lease_until=None,
            ),
            [{"mid": o.message_id, "due": o.retry_at, "why": o.reason} for o in retries],
        )
    if deferrals:
        await session.execute(
            update(MESSAGES)
            .where(M.id == bindparam("mid"), M.status == "sending")
            .values(status="queued", due_at=bindparam("due"), lease_until=None,
                    attempts=M.attempts - 1),
            [{"mid": o.message_id, "due": o.retry_at} for o in deferrals],
        )  # fmt: skip
    await add_to_counters(session, deltas=_count_by_broadcast(written.values()))
    if charged:  # all prices zero: no message is charged, and none of this runs
        await _release_failed(session, written=written, charged=charged)
    if links:  # a message sent twice (a reclaimed lease) stores its links once
        v = json_rows(session, links, _LINK_COLUMNS)
        stored = insert_selected_ignoring_conflicts(session, Link, list(v), select(*v.values()))
        await session.execute(stored)
    return len(written) + len(owned)


_LINK_COLUMNS: dict[str, TypeEngine[Any]] = {
    "message_id": BigInteger(),
    "position": Integer(),
    "org_id": BigInteger(),
    "url": String(),
    "clicks": Integer(),
}  # fmt: skip; the keys of the links the worker gives `record`: one INSERT … SELECT
_FINAL_COLUMNS: dict[str, TypeEngine[Any]] = {
    "mid": BigInteger(), "st": String(), "why": String(), "pid": String(), "seg": Integer()
}  # fmt: skip


async def _write_finals(
    session: AsyncSession, *, finals: Sequence[Outcome], lease_until: datetime, now: datetime
) -> dict[int, tuple[int | None, str, int]]:
    """Side effect: the messages of `finals` still held under `lease_until` end `sent` or
    `failed` (reason, provider id, segments; sent_at for the sent; finished_at; no lease).
    One statement; returns the written ones: id → (broadcast id, status, org id)."""
    rows = [
        {"mid": o.message_id, "st": o.status, "why": o.reason, "pid": o.provider_id,
         "seg": o.segments}
        for o in finals
    ]  # fmt: skip
    v = json_rows(session, rows, _FINAL_COLUMNS)
    stamp = literal(now, M.finished_at.type)
    status: ColumnElement[str] = M.status
    if dialect_name(session) == "sqlite":
        # `+status`: else SQLite drives the join from the partial index of leased rows
        # and reads the whole JSON array once per row (quadratic); this way it reads
        # the array once and finds each message by its rowid.
        status = UnaryExpression(M.status, operator=operators.custom_op("+"), type_=String())
    result = await session.execute(
        update(MESSAGES)
        .where(M.id == v["mid"], status == "sending", M.lease_until == lease_until)
        .values(
            status=v["st"],
            reason=v["why"],
            provider_id=v["pid"],
            segments=v["seg"],
            sent_at=case((v["st"] == "sent", stamp), else_=null()),
            finished_at=stamp,
            lease_until=None,
        )
        .returning(M.id, M.broadcast_id, M.status, M.org_id)
    )
    return {row.id: (row.broadcast_id, row.status, row.org_id) for row in result}


async def _add_outcome_events(
    session: AsyncSession, *, message_ids: Sequence[int], now: datetime
) -> None:
    """Side effect: one `sent` or `failed` event per message of `message_ids` (just
    written), from its row: type = status, source "dispatcher", external id
    "<status>:<id>", a failure's reason in data. One INSERT … SELECT; a message that
    already has its event (it cannot, but for a replay) keeps the one it has."""
    if not message_ids:
        return
    failed_data = (
        func.jsonb_build_object("reason", M.reason)
        if dialect_name(session) == "postgresql"
        else func.json_object("reason", M.reason)
    )
    stamp = literal(now, E.occurred_at.type)
    rows = select(
        M.org_id,
        M.id,
        M.broadcast_id,
        M.campaign_id,
        M.status,
        literal(OUTCOME_SOURCE),
        M.status + literal(":") + sql_cast(M.id, String),
        false(),
        case((M.status == "failed", type_coerce(failed_data, E.data.type)), else_=null()),
        stamp,
        stamp,
    ).where(one_of(session, M.id, message_ids), M.status.in_(("sent", "failed")))
    await session.execute(
        insert_selected_ignoring_conflicts(
            session,
            EVENTS,
            ["org_id", "message_id", "broadcast_id", "campaign_id", "type", "source",
             "external_id", "is_bot", "data", "occurred_at", "created_at"],
            rows,
        )
    )  # fmt: skip


async def _notify_outcome_events(
    session: AsyncSession, *, written: Mapping[int, tuple[int | None, str, int]]
) -> None:
    """Side effect: webhook deliveries of the batch's `sent` / `failed` events, for the
    endpoints subscribed to them. Without such an endpoint in the batch's orgs (one small
    SELECT says so) the events are not even read back."""
    orgs = {org_id for _, _, org_id in written.values()}
    kinds = {status for _, status, _ in written.values()}
    subscribed = await session.scalars(
        select(WebhookEndpoint.event_types).where(
            WebhookEndpoint.org_id.in_(orgs), WebhookEndpoint.enabled.is_(True)
        )
    )
    if not any(set(types or ()) & (kinds | {WEBHOOK_ALL}) for types in subscribed):
        return
    events = await session.scalars(
        select(Event).where(
            Event.source == OUTCOME_SOURCE,
            Event.message_id.in_(sorted(written)),
            Event.type.in_(sorted(kinds)),
        )
    )
    await webhooks.enqueue_deliveries(session, events=list(events))


async def _release_failed(
    session: AsyncSession,
    *,
    written: Mapping[int, tuple[int | None, str, int]],
    charged: Mapping[int, Claimed],
) -> None:
    """Side effect: each org's balance grows by its failed messages' cost (one UPDATE
    and one ledger entry per org; a batch usually holds one org)."""
    refunds: dict[int, int] = {}
    for message_id, (_, status, _) in written.items():
        message = charged.get(message_id)
        if status == "failed" and message is not None and message.cost > 0:
            refunds[message.org_id] = refunds.get(message.org_id, 0) + message.cost
    for org_id, amount in sorted(refunds.items()):
        await credits.release(
            session, org_id=org_id, amount=amount, reference=None, note="failed messages"
        )


def _count_by_broadcast(
    written: Iterable[tuple[int | None, str, int]],
) -> dict[int, dict[str, int]]:
    deltas: dict[int, dict[str, int]] = {}
    for broadcast_id, status, _ in written:
        if broadcast_id is None:
            continue
        counters = deltas.setdefault(broadcast_id, {"sent_count": 0, "failed_count": 0})
        counters["sent_count" if status == "sent" else "failed_count"] += 1
    return deltas


async def add_to_counters(
    session: AsyncSession, *, deltas: Mapping[int, Mapping[str, int]]
) -> None:
    """Side effect: for each broadcast, counter += delta, in one UPDATE per broadcast."""
    for broadcast_id, counters in sorted(deltas.items()):  # sorted: a stable lock order
        values = {name: B[name] + n for name, n in counters.items() if n}
        if values:
            await session.execute(
                update(BROADCASTS).where(B.id == broadcast_id).values(**values),
            )


async def reap(session: AsyncSession, *, now: datetime) -> int:
    """Side effect: messages whose lease ran out (a worker died mid-batch) are queued
    again, due now. Returns how many. At most the in-flight batch is sent twice."""
    result = await session.execute(
        update(MESSAGES)
        .where(M.status == "sending", M.lease_until < now)
        .values(status="queued", due_at=now, lease_until=None),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def due_broadcasts(session: AsyncSession, *, now: datetime, limit: int = 10) -> list[int]:
    """Scheduled broadcasts whose time has come (read only)."""
    rows = await session.scalars(
        select(B.id)
        .where(B.status == BroadcastStatus.SCHEDULED, B.scheduled_at <= now)
        .order_by(B.scheduled_at)
        .limit(limit)
    )
    return list(rows)


async def finish_broadcasts(session: AsyncSession, *, now: datetime) -> int:
    """Side effect: SENDING broadcasts with no unfinished message become SENT."""
    unfinished = exists().where(and_(M.broadcast_id == B.id, M.status.in_(UNFINISHED)))
    result = await session.execute(
        update(BROADCASTS)
        .where(B.status == BroadcastStatus.SENDING, ~unfinished)
        .values(status=BroadcastStatus.SENT, completed_at=now, updated_at=now),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def count_by_status(session: AsyncSession, *, broadcast_id: int) -> dict[str, int]:
    """Messages of a broadcast per status (read only)."""
    rows = await session.execute(
        select(M.status, func.count()).where(M.broadcast_id == broadcast_id).group_by(M.status)
    )
    return {status: int(n) for status, n in rows}


async def next_due(session: AsyncSession) -> datetime | None:
    """When the next queued message is due (read only)."""
    value: datetime | None = await session.scalar(
        select(func.min(M.due_at)).where(M.status == "queued")
    )
    return value
