"""A broadcast's counters and its completion: the one place they move.

Every counter (`sent_count`, `failed_count`, `delivered_count`, `skipped_count`, …) moves
by `add_to_counters`, one UPDATE per broadcast and batch, never one per message: the
dispatcher with each batch's outcomes, events (opens, clicks, reports, bounces) with each
batch of events. A SENDING broadcast with no unfinished message left becomes SENT through
the broadcast transition table (`finish_broadcasts`).
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
    """Side effect: SENDING broadcasts with no unfinished message become SENT. Returns
    how many."""
    done = transition(BroadcastStatus.SENDING, BroadcastStatus.SENT)
    unfinished = exists().where(
        M.broadcast_id == B.id, M.status.in_(sorted(s.value for s in UNFINISHED))
    )
    result = await session.execute(
        update(BROADCASTS)
        .where(B.status == BroadcastStatus.SENDING, ~unfinished)
        .values(status=done, completed_at=now, updated_at=now),
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
