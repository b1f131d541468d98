"""What came of claimed messages, written back to their rows in a fixed number of
statements per batch, none per message.

Only messages the worker still holds — SENDING with the very lease it claimed them with —
are written: a worker that was too slow, whose rows another worker reclaimed, changes
nothing and so counts nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.campaigns.models import CampaignVersion
from tidings.db.dialect import for_update, json_rows, not_by_index
from tidings.outbox.models import ATTEMPT_REASON_LENGTH, Message, MessageAttempt
from tidings.outbox.status import MessageStatus

MESSAGES = cast(Table, Message.__table__)
ATTEMPTS = cast(Table, MessageAttempt.__table__)
VERSIONS = cast(Table, CampaignVersion.__table__)
M = MESSAGES.c
S = MessageStatus
_BY_VALUE = {status.value: status for status in MessageStatus}  # faster than S(value)
RETRIED = "retried"
"""An attempt's outcome (`message_attempts`): a transient failure, tried again after the
retry backoff (through the campaign's next connection, when it has several)."""
FAILED_OVER = "failed over"
"""A transient failure tried again at once, through a connection of its campaign it has not
tried yet."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one claimed message: SENT or FAILED, or QUEUED again at `retry_at`."""

    message_id: int
    broadcast_id: int | None
    status: MessageStatus
    reason: str | None = None
    provider_id: str | None = None
    segments: int | None = None
    email_message_id: str | None = None  # the Message-ID a sent email went with
    # FAILED because the provider refused the address itself: (channel, address, reply),
    # a hard bounce (`channels.base.RecipientRefused`).
    hard_bounce: tuple[str, str, str] | None = None
    retry_at: datetime | None = None
    deferred: bool = False  # not tried (the connection's limits): the attempt is given back
    # The connection it was handed to (None: the sink, or never handed over), and whether
    # that connection answered with a transient error (what its breaker counts).
    connection_id: int | None = None
    transient: bool = False


@dataclass(frozen=True, slots=True)
class Written:
    """A message whose final outcome was written, with the cost it had reserved (a
    failed one's is given back)."""

    message_id: int
    broadcast_id: int | None
    status: MessageStatus
    org_id: int
    cost: int = 0


@dataclass(frozen=True, slots=True)
class Recorded:
    finals: list[Written]
    requeued: int


async def record(
    session: AsyncSession, *, outcomes: Sequence[Outcome], lease_until: datetime, now: datetime
) -> Recorded:
    """Side effects, on the messages still held under `lease_until`: the final ones end
    SENT or FAILED (reason, provider id, segments, Message-ID, the connection used;
    sent_at for the sent; finished_at; no lease), in one UPDATE … FROM a JSON array of
    rows; retries go back to QUEUED at their `retry_at` (at once when failing over to a
    connection not tried yet) with the reason and the connection they failed on, and
    each such attempt is kept in `message_attempts` (one executemany INSERT; the final
    attempt is the message row itself); deferrals go back too, with their attempt given
    back (they were never handed over: no attempt is kept). Returns the final ones written and how
    many were queued again."""
    finals = [o for o in outcomes if o.retry_at is None]
    requeued = [o for o in outcomes if o.retry_at is not None]
    written = await _write_finals(session, finals=finals, lease_until=lease_until, now=now)
    owned: dict[int, tuple[int, int]] = {}  # message id → (org id, attempt number)
    if requeued:
        held = select(M.id, M.org_id, M.attempts).where(
            M.id.in_([o.message_id for o in requeued]),
            M.status == S.SENDING,
            M.lease_until == lease_until,
        )
        rows = await session.execute(for_update(session, held))
        owned = {mid: (org_id, attempts) for mid, org_id, attempts in rows}
    retries = [o for o in requeued if o.message_id in owned and not o.deferred]
    hurried = await _failing_over(session, [o.message_id for o in retries])
    retries = [replace(o, retry_at=now) if o.message_id in hurried else o for o in retries]
    deferrals = [o for o in requeued if o.message_id in owned and o.deferred]
    if retries:
        await session.execute(
            update(MESSAGES)
            .where(M.id == bindparam("mid"), M.status == S.SENDING)
            .values(
                status=S.QUEUED,
                due_at=bindparam("due"),
                reason=bindparam("why"),
                lease_until=None,
                connection_id=func.coalesce(bindparam("cid", type_=BigInteger()), M.connection_id),
            ),
            [
                {"mid": o.message_id, "due": o.retry_at, "why": o.reason, "cid": o.connection_id}
                for o in retries
            ],
        )
        await session.execute(
            insert(ATTEMPTS),
            [
                {"org_id": owned[o.message_id][0], "message_id": o.message_id,
                 "attempt": owned[o.message_id][1], "connection_id": o.connection_id,
                 "outcome": FAILED_OVER if o.message_id in hurried else RETRIED,
                 "reason": None if o.reason is None else o.reason[:ATTEMPT_REASON_LENGTH],
                 "at": now}
                for o in retries
            ],
        )  # fmt: skip
    if deferrals:
        await session.execute(
            update(MESSAGES)
            .where(M.id == bindparam("mid"), M.status == S.SENDING)
            .values(status=S.QUEUED, due_at=bindparam("due"), lease_until=None,
                    attempts=M.attempts - 1),
            [{"mid": o.message_id, "due": o.retry_at} for o in deferrals],
        )  # fmt: skip
    return Recorded(written, len(owned))


async def _failing_over(session: AsyncSession, message_ids: Sequence[int]) -> set[int]:
    """Of these retried messages, those whose campaign fails over to a connection they
    have not tried yet (fewer attempts than connections): their next attempt, on the
    next connection, is due at once instead of after the backoff, which is for trying
    the same provider again. A message that went round the whole list waits as usual
    (read only; one SELECT, none without retries)."""
    if not message_ids:
        return set()
    rows = await session.execute(
        select(M.id, M.attempts, VERSIONS.c.connection_ids)
        .join(VERSIONS, VERSIONS.c.id == M.campaign_version_id)
        .where(M.id.in_(message_ids), VERSIONS.c.connection_ids.is_not(None))
    )
    return {mid for mid, attempts, ids in rows if ids and attempts < len(ids)}


_FINAL_COLUMNS: dict[str, TypeEngine[Any]] = {
    "mid": BigInteger(), "st": String(), "why": String(), "pid": String(), "seg": Integer(),
    "cid": BigInteger(), "hid": String(),
}  # fmt: skip


async def _write_finals(
    session: AsyncSession, *, finals: Sequence[Outcome], lease_until: datetime, now: datetime
) -> list[Written]:
    if not finals:
        return []
    rows = [
        {"mid": o.message_id, "st": o.status, "why": o.reason, "pid": o.provider_id,
         "seg": o.segments, "cid": o.connection_id, "hid": o.email_message_id}
        for o in finals
    ]  # fmt: skip
    v = json_rows(session, rows, _FINAL_COLUMNS)
    stamp = literal(now, M.finished_at.type)
    # Else SQLite drives the join from the partial index of leased rows and reads the
    # whole JSON array once per row (quadratic); this way it reads the array once and
    # finds each message by its rowid.
    status = not_by_index(session, M.status)
    result = await session.execute(
        update(MESSAGES)
        .where(M.id == v["mid"], status == S.SENDING, M.lease_until == lease_until)
        .values(
            status=v["st"],
            reason=v["why"],
            provider_id=v["pid"],
            segments=v["seg"],
            connection_id=func.coalesce(v["cid"], M.connection_id),
            email_message_id=v["hid"],
            sent_at=case((v["st"] == S.SENT.value, stamp), else_=null()),
            finished_at=stamp,
            lease_until=None,
        )
        .returning(M.id, M.broadcast_id, M.status, M.org_id, M.cost)
    )
    return [
        Written(row.id, row.broadcast_id, _BY_VALUE[row.status], row.org_id, row.cost)
        for row in result
    ]


def counter_deltas(written: Iterable[Written]) -> dict[int, dict[str, int]]:
    """How the broadcasts' sent_count and failed_count move for these outcomes."""
    deltas: dict[int, dict[str, int]] = {}
    for w in written:
        if w.broadcast_id is None:
            continue
        counters = deltas.setdefault(w.broadcast_id, {"sent_count": 0, "failed_count": 0})
        counters["sent_count" if w.status is S.SENT else "failed_count"] += 1
    return deltas
