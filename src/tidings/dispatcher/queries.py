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

from sqlalchemy import Table, and_, bindparam, exists, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import BroadcastStatus
from tidings.campaigns.models import Campaign
from tidings.campaigns.recipients import MARKETING_ONLY
from tidings.credits import service as credits
from tidings.db.dialect import dialect_name, insert_ignoring_conflicts
from tidings.links.models import Link
from tidings.messages.models import Message
from tidings.suppressions.models import Suppression

UNFINISHED = ("queued", "sending", "held")
# Core tables: the hot path runs no ORM machinery (no identity map, no unit of work).
MESSAGES = cast(Table, Message.__table__)
BROADCASTS = cast(Table, Broadcast.__table__)
M = MESSAGES.c
B = BROADCASTS.c
CAMPAIGNS = cast(Table, Campaign.__table__)
SUPPRESSIONS = cast(Table, Suppression.__table__)


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
        .where(M.id.in_([c.id for c in claimed]), M.status == "sending", exists().where(match))
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
    effects: those messages leave `sending`; sent_count / failed_count grow by one
    UPDATE per broadcast, never one per message; the batch's tracked links are stored
    (the originals `/l/{token}` redirects to); failed messages among `charged` (the
    claimed ones that had a cost) give their reservation back, one ledger entry per org
    and batch. Returns how many messages were written.
    """
    ids = [o.message_id for o in outcomes]
    held = select(M.id).where(M.id.in_(ids), M.status == "sending", M.lease_until == lease_until)
    if dialect_name(session) == "postgresql":
        held = held.with_for_update()
    owned = set((await session.execute(held)).scalars())
    finals = [o for o in outcomes if o.retry_at is None and o.message_id in owned]
    retries = [o for o in outcomes if o.retry_at is not None and o.message_id in owned]
    deferrals = [o for o in retries if o.deferred]
    retries = [o for o in retries if not o.deferred]
    if finals:
        await session.execute(
            update(MESSAGES)
            .where(M.id == bindparam("mid"), M.status == "sending")
            .values(
                status=bindparam("st"),
                reason=bindparam("why"),
                provider_id=bindparam("pid"),
                segments=bindparam("seg"),
                sent_at=bindparam("sent"),
                finished_at=now,
                lease_until=None,
            ),
            [
                {
                    "mid": o.message_id,
                    "st": o.status,
                    "why": o.reason,
                    "pid": o.provider_id,
                    "seg": o.segments,
                    "sent": now if o.status == "sent" else None,
                }
                for o in finals
            ],
        )
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
    await add_to_counters(session, deltas=_count_by_broadcast(finals))
    if charged:  # all prices zero: no message is charged, and none of this runs
        await _release_failed(session, finals=finals, charged=charged)
    if links:  # a message sent twice (a reclaimed lease) stores its links once
        await session.execute(insert_ignoring_conflicts(session, Link), list(links))
    return len(owned)


async def _release_failed(
    session: AsyncSession, *, finals: Iterable[Outcome], charged: Mapping[int, Claimed]
) -> None:
    """Side effect: each org's balance grows by its failed messages' cost (one UPDATE
    and one ledger entry per org; a batch usually holds one org)."""
    refunds: dict[int, int] = {}
    for o in finals:
        message = charged.get(o.message_id)
        if o.status == "failed" and message is not None and message.cost > 0:
            refunds[message.org_id] = refunds.get(message.org_id, 0) + message.cost
    for org_id, amount in sorted(refunds.items()):
        await credits.release(
            session, org_id=org_id, amount=amount, reference=None, note="failed messages"
        )


def _count_by_broadcast(outcomes: Iterable[Outcome]) -> dict[int, dict[str, int]]:
    deltas: dict[int, dict[str, int]] = {}
    for o in outcomes:
        if o.broadcast_id is None:
            continue
        counters = deltas.setdefault(o.broadcast_id, {"sent_count": 0, "failed_count": 0})
        counters["sent_count" if o.status == "sent" else "failed_count"] += 1
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
