"""The statements on `workers` (`dispatcher/heartbeat.py`), each with its side effects.

Each runs inside the caller's write transaction, which the caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import for_update
from tidings.dispatcher.worker_models import Worker

# Core table: a heartbeat runs no ORM machinery.
WORKERS = cast(Table, Worker.__table__)
W = WORKERS.c


async def join(
    session: AsyncSession,
    *,
    name: str,
    host: str,
    pid: int,
    started_at: datetime,
    now: float,
    worker_id: int | None = None,
) -> int:
    """Side effect: the worker's row, alive as of `now` (with `worker_id`: that id again,
    for a worker that was taken for dead and is not). Returns its id."""
    values = {"name": name, "host": host, "pid": pid, "started_at": started_at,
              "heartbeat_epoch": now}  # fmt: skip
    if worker_id is not None:
        values["id"] = worker_id
    found = await session.scalar(insert(WORKERS).values(**values).returning(W.id))
    assert found is not None
    return int(found)


async def beat(session: AsyncSession, *, worker_id: int, now: float) -> bool:
    """Side effect: the worker is alive as of `now` (never moved back). False when its
    row is gone: another worker took it for dead."""
    result = await session.execute(
        update(WORKERS).where(W.id == worker_id).values(heartbeat_epoch=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def dead(session: AsyncSession, *, silent_since: float) -> list[tuple[int, str]]:
    """The workers whose last heartbeat is before `silent_since`, as (id, name), locked
    until commit (PostgreSQL: those another live worker is freeing already are skipped)."""
    query = select(W.id, W.name).where(W.heartbeat_epoch < silent_since).order_by(W.id)
    rows = await session.execute(for_update(session, query, skip_locked=True))
    return [(int(row.id), str(row.name)) for row in rows]


async def forget(session: AsyncSession, *, worker_ids: Sequence[int]) -> None:
    """Side effect: these workers' rows are deleted."""
    if worker_ids:
        await session.execute(delete(WORKERS).where(W.id.in_(list(worker_ids))))


async def silent_on(
    session: AsyncSession, *, host: str, silent_since: float
) -> list[tuple[int, str, int]]:
    """The workers of `host` whose last heartbeat is before `silent_since`, as (id, name,
    pid), locked until commit (PostgreSQL: those another live worker is freeing already
    are skipped)."""
    query = (
        select(W.id, W.name, W.pid)
        .where(W.host == host, W.heartbeat_epoch < silent_since)
        .order_by(W.id)
    )
    rows = await session.execute(for_update(session, query, skip_locked=True))
    return [(int(row.id), str(row.name), int(row.pid)) for row in rows]
