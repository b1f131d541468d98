"""A broadcast's messages moved between statuses together (pause, resume, cancel), each
move checked against the transition table. Query helpers: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.outbox.models import Message
from tidings.outbox.status import TRANSITIONS, MessageStatus, transition

MESSAGES = cast(Table, Message.__table__)
M = MESSAGES.c


async def move(
    session: AsyncSession,
    *,
    broadcast_id: int,
    source: MessageStatus,
    target: MessageStatus,
    now: datetime,
    reason: str | None = None,
) -> int:
    """Side effect: the broadcast's `source` messages become `target`; a final target
    stamps `finished_at` and the `reason`. A resumed message keeps its due_at: one past is
    due now anyway, and one ahead is a backoff or a provider's Retry-After that resuming
    must not cut short. Conflict if the table has no such move. Returns, for a final
    target, the cost the moved messages had reserved (0 otherwise): read from the rows
    this very UPDATE moved, so that a message a worker claimed meanwhile is neither ended
    nor given back (the caller releases it)."""
    transition(source, target)
    values: dict[str, object] = {"status": target.value}
    # Its own messages, then the fallbacks made instead of some (of no broadcast).
    movings = [
        update(MESSAGES).where(M.broadcast_id == broadcast_id, M.status == source.value),
        update(MESSAGES).where(fallbacks_of(broadcast_id), M.status == source.value),
    ]
    if TRANSITIONS[target]:
        for moving in movings:
            await session.execute(moving.values(**values))
        return 0
    values.update(finished_at=now, reason=reason)
    reserved = 0
    for moving in movings:
        # The charged rows first, their costs returned; then the free ones (a free org's
        # million-message cancel returns no row).
        costs = await session.scalars(moving.where(M.cost > 0).values(**values).returning(M.cost))
        reserved += sum(int(cost) for cost in costs)
        await session.execute(moving.values(**values))
    return reserved


def fallbacks_of(broadcast_id: int) -> ColumnElement[bool]:
    """The fallback messages made instead of the broadcast's messages (they belong to no
    broadcast, `outbox.fallback`, `broadcasts.fallback`): instead of one skipped or failed,
    or of one sent and hard-bounced since. A WHERE for their credit reservation and their
    moves. Reads only the broadcast's messages that fell back, through the partial index
    `ix_messages_broadcast_id_fell_back_to`."""
    preferred = MESSAGES.alias("preferred").c
    made = select(preferred.fell_back_to).where(
        preferred.broadcast_id == broadcast_id, preferred.fell_back_to.is_not(None)
    )
    return M.id.in_(made)


def of_broadcast(broadcast_id: int, *statuses: MessageStatus) -> ColumnElement[bool]:
    """The broadcast's messages in any of `statuses` (a WHERE for credit reservations)."""
    return (M.broadcast_id == broadcast_id) & M.status.in_([s.value for s in statuses])
