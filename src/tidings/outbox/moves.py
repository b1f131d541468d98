"""A broadcast's messages moved between statuses together (pause, resume, cancel), each
move checked against the transition table. Query helpers: the caller owns the transaction."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import ColumnElement, Table, update
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
) -> None:
    """Side effect: the broadcast's `source` messages become `target`; a final target
    stamps `finished_at` and the `reason`. A resumed message keeps its due_at: one past is
    due now anyway, and one ahead is a backoff or a provider's Retry-After that resuming
    must not cut short. Conflict if the table has no such move."""
    transition(source, target)
    values: dict[str, object] = {"status": target.value}
    if not TRANSITIONS[target]:
        values.update(finished_at=now, reason=reason)
    await session.execute(
        update(MESSAGES)
        .where(M.broadcast_id == broadcast_id, M.status == source.value)
        .values(**values)
    )


def of_broadcast(broadcast_id: int, *statuses: MessageStatus) -> ColumnElement[bool]:
    """The broadcast's messages in any of `statuses` (a WHERE for credit reservations)."""
    return (M.broadcast_id == broadcast_id) & M.status.in_([s.value for s in statuses])
