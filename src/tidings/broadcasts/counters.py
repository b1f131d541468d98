"""A broadcast's counters and its completion: the one place they move.

Every counter (`sent_count`, `failed_count`, `delivered_count`, `skipped_count`, …) moves
by `add_to_counters`, one UPDATE per broadcast and batch, never one per message: the
dispatcher with each batch's outcomes, events (opens, clicks, reports, bounces) with each
batch of events. A SENDING broadcast with no unfinished message left, its fallback
messages on the other channel included, becomes SENT through the broadcast transition
table (`finish_broadcasts`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import cast

from sqlalchemy import Table, exists, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import BroadcastStatus, transition
from tidings.outbox.models import Message
from tidings.outbox.status import UNFINISHED

BROADCASTS = cast(Table, Broadcast.__table__)
MESSAGES = cast(Table, Message.__table__)
B = BROADCASTS.c
M = MESSAGES.c


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


async def finish_broadcasts(session: AsyncSession, *, now: datetime) -> int:
    """Side effect: SENDING broadcasts with no unfinished message become SENT: neither
    their own (their (broadcast_id, status) index) nor the fallback messages made
    instead of some of them, which belong to no broadcast (reached through the
    `fell_back_to` of the broadcast's messages that fell back: the partial index
    `ix_messages_broadcast_id_fell_back_to`, which holds only those, then each fallback
    by its key). Returns how many."""
    done = transition(BroadcastStatus.SENDING, BroadcastStatus.SENT)
    waiting = sorted(s.value for s in UNFINISHED)
    unfinished = exists().where(M.broadcast_id == B.id, M.status.in_(waiting))
    preferred = MESSAGES.alias("preferred").c
    fallback = MESSAGES.alias("fallback").c
    unfinished_fallback = exists().where(
        preferred.broadcast_id == B.id,
        preferred.fell_back_to.is_not(None),
        fallback.id == preferred.fell_back_to,
        fallback.status.in_(waiting),
    )
    result = await session.execute(
        update(BROADCASTS)
        .where(B.status == BroadcastStatus.SENDING, ~unfinished, ~unfinished_fallback)
        .values(status=done, completed_at=now, updated_at=now),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
