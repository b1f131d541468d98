"""How far a broadcast has got: done of total, the rate and the time left.

    done  = sent + failed          (the messages at an outcome: the row's counters)
    total = recipients             (the messages it sends; skipped ones are not counted)
    rate  = while SENDING or PAUSED: the messages that reached an outcome in the last
            WINDOW (60 s), per minute; None ("—") when none did. Once final: the average
            over the whole send (done / minutes from start to end), from the row alone.
    eta   = (total − done) / rate, while it is SENDING and something moved

`progress_of` is pure (the row and the count moved in the window); `live_progress`
reads that count for a page of broadcasts in one query (`moved_recently`). The query is
bounded to the broadcasts SENDING or PAUSED: no index orders messages by `finished_at`,
so it reads each such broadcast's finished messages through
`ix_messages_broadcast_id_status` (broadcast, status) and keeps those finished in the
window, which costs in proportion to what the broadcast has sent so far; a final
broadcast, whose rate comes from its row, costs nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import FINAL, BroadcastStatus
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus

WINDOW = timedelta(seconds=60)
# An outcome reached: a sent message may have moved on to delivered, bounced, complained.
_OUTCOMES = [s.value for s in (MessageStatus.SENT, MessageStatus.DELIVERED,
                               MessageStatus.BOUNCED, MessageStatus.COMPLAINED,
                               MessageStatus.FAILED)]  # fmt: skip
_MOVING = frozenset({BroadcastStatus.SENDING, BroadcastStatus.PAUSED})


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int
    per_minute: float | None  # None when nothing moved in the window (or not started)
    eta_seconds: int | None  # None unless it is sending at a known rate
    final: bool

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.final else 0)


def progress_of(broadcast: Broadcast, *, now: datetime, moved: int = 0) -> Progress:
    """`moved`: its messages that reached an outcome in the last WINDOW (`moved_recently`)."""
    status = BroadcastStatus(broadcast.status)
    done = broadcast.sent_count + broadcast.failed_count
    total = max(broadcast.recipients_count, done)
    per_minute = None
    if status in FINAL:
        if broadcast.started_at is not None and done:
            end = broadcast.completed_at or now
            minutes = max((end - broadcast.started_at).total_seconds(), 1.0) / 60
            per_minute = done / minutes
    elif moved:
        per_minute = moved / (WINDOW.total_seconds() / 60)
    eta = None
    if status is BroadcastStatus.SENDING and per_minute:
        eta = round((total - done) / per_minute * 60)
    return Progress(done, total, per_minute, eta, status in FINAL)


async def moved_recently(
    session: AsyncSession, *, org_id: int, broadcasts: Sequence[Broadcast], now: datetime
) -> dict[int, int]:
    """Per broadcast SENDING or PAUSED among `broadcasts`, its messages that reached an
    outcome in the last WINDOW (absent: none). One query (read only)."""
    ids = [b.id for b in broadcasts if BroadcastStatus(b.status) in _MOVING]
    if not ids:
        return {}
    rows = await session.execute(
        select(Message.broadcast_id, func.count())
        .where(
            Message.org_id == org_id,
            Message.broadcast_id.in_(ids),
            Message.status.in_(_OUTCOMES),
            Message.finished_at >= now - WINDOW,
        )
        .group_by(Message.broadcast_id)
    )
    return {int(b): int(n) for b, n in rows if b is not None}


async def live_progress(
    session: AsyncSession, *, org_id: int, broadcasts: Sequence[Broadcast], now: datetime
) -> list[Progress]:
    """The progress of each broadcast, in order, with the rate over the recent window."""
    moved = await moved_recently(session, org_id=org_id, broadcasts=broadcasts, now=now)
    return [progress_of(b, now=now, moved=moved.get(b.id, 0)) for b in broadcasts]
