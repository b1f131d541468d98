"""The outbox as a queue: claim due messages, give expired leases back, skip what became
suppressed, and say when the next message is due. Every statement of the sending hot path
that leases rows, each with its side effects; `outbox.outcomes` writes what came of them.

The messages table is the queue: a row moves QUEUED → SENDING (claimed, leased) → SENT |
FAILED, or back to QUEUED with a later `due_at` for a retry (`outbox.status`). PostgreSQL
takes the claimed rows with SKIP LOCKED so any number of workers claim disjoint batches;
SQLite has one writer at a time, so the same UPDATE … RETURNING is already exclusive
(`db.dialect.for_update`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, exists, func, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.models import CampaignVersion
from tidings.db.dialect import for_update, one_of
from tidings.outbox.models import Message
from tidings.outbox.rules import SUPPRESSED_PREFIX, suppression_match
from tidings.outbox.status import MessageStatus
from tidings.suppressions.models import Suppression

# Core tables: the hot path runs no ORM machinery (no identity map, no unit of work).
MESSAGES = cast(Table, Message.__table__)
M = MESSAGES.c
VERSIONS = cast(Table, CampaignVersion.__table__)
SUPPRESSIONS = cast(Table, Suppression.__table__)
S = MessageStatus


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased message, with what sending it needs from its own row."""

    id: int
    org_id: int
    broadcast_id: int | None
    campaign_id: int | None
    campaign_version_id: int | None  # what it sends: the campaign as its send froze it
    contact_id: int | None
    channel: str
    recipient: str | None
    variables: dict[str, Any] | None
    attempts: int
    is_test: bool = False
    cost: int = 0  # micro-credits reserved: given back if it fails
    segments: int | None = None  # an SMS's reserved for (None: 1), until its text is known


async def claim(
    session: AsyncSession,
    *,
    now: datetime,
    lease_until: datetime,
    limit: int,
    worker_id: int | None = None,
) -> list[Claimed]:
    """Lease up to `limit` due messages, oldest first, for `worker_id`. Side effects:
    QUEUED → SENDING, lease_until and worker_id set, attempts + 1. Caller commits at once;
    the lease and the worker's heartbeat protect the rows."""
    # A materialised CTE, read once: as `IN (subquery)`, PostgreSQL may plan a nested loop
    # that runs the LIMIT … SKIP LOCKED subquery again for each row it updates, each run
    # finding rows the last did not lock yet, so one claim took every due message.
    due = (
        for_update(
            session,
            select(M.id)
            .where(M.status == S.QUEUED, M.due_at <= now)
            .order_by(M.due_at)
            .limit(limit),
            skip_locked=True,
        )
        .cte("due")
        .prefix_with("MATERIALIZED")
    )
    statement = (
        update(MESSAGES)
        .where(M.id.in_(select(due.c.id)))
        .values(
            status=S.SENDING, lease_until=lease_until, worker_id=worker_id, attempts=M.attempts + 1
        )
        .returning(
            M.id,
            M.org_id,
            M.broadcast_id,
            M.campaign_id,
            M.campaign_version_id,
            M.contact_id,
            M.channel,
            M.recipient,
            M.variables,
            M.attempts,
            M.is_test,
            M.cost,
            M.segments,
        )
    )
    rows = await session.execute(statement)
    return [Claimed(*row) for row in rows]


async def skip_suppressed(
    session: AsyncSession, *, claimed: Sequence[Claimed], now: datetime
) -> list[Claimed]:
    """Side effect: the claimed messages whose recipient is now on the org's suppression
    list (with a reason that holds for the frozen campaign's purpose: `outbox.rules`) end
    SKIPPED, "suppressed: <reason>", with their attempt given back. One UPDATE … RETURNING
    per batch, probing the unique (org, channel, address) index once per message. Returns
    the skipped ones (the caller moves their broadcasts' counters and credit)."""
    if not claimed:
        return []
    listed = SUPPRESSIONS.alias("listed")
    version = VERSIONS.alias("version")
    marketing = exists().where(
        version.c.id == M.campaign_version_id, version.c.purpose == "marketing"
    )
    match = suppression_match(
        listed, org_id=M.org_id, channel=M.channel, address=M.recipient, marketing=marketing
    )
    reason = select(listed.c.reason).where(match).limit(1).scalar_subquery()
    rows = await session.execute(
        update(MESSAGES)
        .where(
            one_of(session, M.id, [c.id for c in claimed]),
            M.status == S.SENDING,
            exists().where(match),
        )
        .values(
            status=S.SKIPPED,
            reason=literal(SUPPRESSED_PREFIX) + reason,
            finished_at=now,
            lease_until=None,
            attempts=M.attempts - 1,
        )
        .returning(M.id)
    )
    skipped = set(rows.scalars())
    return [c for c in claimed if c.id in skipped]


async def still_held(
    session: AsyncSession, *, message_ids: Sequence[int], lease_until: datetime
) -> set[int]:
    """Which of these messages this worker still holds (SENDING under the very lease it
    claimed them with). Side effect: those rows are locked until the transaction ends
    (PostgreSQL), so nothing else moves them meanwhile."""
    if not message_ids:
        return set()
    held = select(M.id).where(
        one_of(session, M.id, list(message_ids)),
        M.status == S.SENDING,
        M.lease_until == lease_until,
    )
    return set((await session.execute(for_update(session, held))).scalars())


async def reap(session: AsyncSession, *, now: datetime) -> int:
    """Side effect: messages whose lease ran out (a worker died mid-batch) are QUEUED
    again, due now. Returns how many. At most the in-flight batch is sent twice."""
    result = await session.execute(
        update(MESSAGES)
        .where(M.status == S.SENDING, M.lease_until < now)
        .values(status=S.QUEUED, due_at=now, lease_until=None),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def free_claims(session: AsyncSession, *, worker_ids: Sequence[int], now: datetime) -> int:
    """Side effect: the messages these (dead) workers claimed and hold no outcome for are
    QUEUED again, due now, their attempt kept (the claim counted one: a message whose
    workers keep dying fails after `max_attempts`). Returns how many. Read through the
    partial index of leased rows: only the batches in flight are looked at."""
    if not worker_ids:
        return 0
    result = await session.execute(
        update(MESSAGES)
        .where(M.status == S.SENDING, one_of(session, M.worker_id, list(worker_ids)))
        .values(status=S.QUEUED, due_at=now, lease_until=None, worker_id=None),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def next_due(session: AsyncSession) -> datetime | None:
    """When the next queued message is due (read only)."""
    value: datetime | None = await session.scalar(
        select(func.min(M.due_at)).where(M.status == S.QUEUED)
    )
    return value


async def status_counts(session: AsyncSession) -> dict[tuple[str, str], int]:
    """(status, channel) → messages, every status (read only; for monitoring). One grouped
    count over the whole outbox: its caller reads it at most every few seconds."""
    rows = await session.execute(
        select(M.status, M.channel, func.count()).group_by(M.status, M.channel)
    )
    return {(status, channel): int(n) for status, channel, n in rows}


async def oldest_due(session: AsyncSession, *, now: datetime) -> datetime | None:
    """When the oldest message due by `now` and not yet claimed became due (read only)."""
    value: datetime | None = await session.scalar(
        select(func.min(M.due_at)).where(M.status == S.QUEUED, M.due_at <= now)
    )
    return value
