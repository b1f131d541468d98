"""The statements behind a connection's cluster-wide limits (`dispatcher/limits.py`), each
with the side effects it has.

Each runs inside the caller's write transaction (`begin_write`), which the caller
commits. Where SQLite and PostgreSQL differ (the row lock, the whole part of a float,
LEAST/GREATEST) the difference is a helper of `db/dialect.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    Table,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import (
    greatest,
    insert_ignoring_conflicts,
    least,
    locks_rows,
    whole_part,
)
from tidings.dispatcher.limit_models import ConnectionBucket, ConnectionSlot

# Core tables: the hot path runs no ORM machinery.
BUCKETS = cast(Table, ConnectionBucket.__table__)
SLOTS = cast(Table, ConnectionSlot.__table__)
K = BUCKETS.c
S = SLOTS.c


@dataclass(frozen=True, slots=True)
class Taken:
    """The bucket row after `take`, and what it saw of the slots."""

    granted: int
    tokens: float
    refilled_epoch: float
    blocked_until_epoch: float
    held: int  # slots held by unexpired grants before this one (0 when not counted)
    stale: bool  # expired slot rows exist


async def lock_bucket(session: AsyncSession, *, connection_id: int) -> bool:
    """PostgreSQL: lock the bucket row until commit, so the next statement's snapshot sees
    every grant committed before. False when there is no row yet. SQLite: nothing to do
    (BEGIN IMMEDIATE already made this the only writer); True."""
    if not locks_rows(session):
        return True
    found = await session.scalar(
        select(K.connection_id).where(K.connection_id == connection_id).with_for_update()
    )
    return found is not None


async def create_bucket(
    session: AsyncSession, *, connection_id: int, tokens: float, now: float
) -> None:
    """Side effect: the connection's bucket row exists (inserted with `tokens`, unless a
    concurrent worker created it first)."""
    await session.execute(
        insert_ignoring_conflicts(session, BUCKETS).values(
            connection_id=connection_id,
            tokens=tokens,
            refilled_epoch=now,
            blocked_until_epoch=0.0,
            last_granted=0,
        )
    )


async def take(
    session: AsyncSession,
    *,
    connection_id: int,
    now: float,
    want: int,
    per_second: float | None,
    max_concurrency: int | None,
) -> Taken | None:
    """One UPDATE … RETURNING of the bucket row. Side effects: tokens refilled up to `now`
    then reduced by the grant; `refilled_epoch` moves up to `now`; `last_granted` = the
    grant. None when the row does not exist yet."""
    at = bindparam("now", now, type_=Float)
    # min(want, whole tokens, free slots), each term present only when that limit is set.
    terms: list[ColumnElement[Any]] = [bindparam("want", want, type_=Integer)]
    # A call without a rate (concurrency only) leaves the token state alone: moving
    # refilled_epoch without crediting tokens would starve the next rate-limited call.
    values: dict[str, Any] = {}
    if per_second is not None:
        values["refilled_epoch"] = greatest(K.refilled_epoch, at)
        rate = bindparam("rate", per_second, type_=Float)
        capacity = bindparam("capacity", max(1.0, per_second), type_=Float)
        elapsed = case((K.refilled_epoch < at, at - K.refilled_epoch), else_=0.0)
        available = least(K.tokens + elapsed * rate, capacity)
        terms.append(whole_part(session, available))
    held: ColumnElement[Any] | None = None
    stale: ColumnElement[Any] | None = None
    if max_concurrency is not None:
        held = _held(connection_id, at)
        stale = _expired(connection_id, at)
        terms.append(bindparam("max_concurrency", max_concurrency, type_=Integer) - held)
    smallest = terms[0]
    for term in terms[1:]:
        smallest = least(smallest, term)
    granted = case((K.blocked_until_epoch > at, 0), (smallest < 0, 0), else_=smallest)
    values["last_granted"] = granted
    if per_second is not None:
        values["tokens"] = available - granted
    returned: list[ColumnElement[Any]] = [
        K.last_granted,
        K.tokens,
        K.refilled_epoch,
        K.blocked_until_epoch,
    ]
    if held is not None and stale is not None:
        returned += [held, stale]
    row = (
        await session.execute(
            update(BUCKETS)
            .where(K.connection_id == connection_id)
            .values(**values)
            .returning(*returned)
        )
    ).one_or_none()
    if row is None:
        return None
    return Taken(
        granted=int(row[0]),
        tokens=float(row[1]),
        refilled_epoch=float(row[2]),
        blocked_until_epoch=float(row[3]),
        held=int(row[4]) if held is not None else 0,
        stale=bool(row[5]) if stale is not None else False,
    )


async def hold(
    session: AsyncSession, *, connection_id: int, holder: str, sends: int, expires_epoch: float
) -> int:
    """Side effect: a slot row holding `sends` of the connection's concurrency until
    released or `expires_epoch`. Returns its id."""
    slot_id = await session.scalar(
        insert(SLOTS)
        .values(
            connection_id=connection_id, holder=holder, sends=sends, expires_epoch=expires_epoch
        )
        .returning(S.id)
    )
    assert slot_id is not None
    return int(slot_id)


async def unhold(session: AsyncSession, *, slot_id: int, holder: str) -> None:
    """Side effect: the holder's slot row is deleted (already gone when it expired and
    was purged: nothing happens)."""
    await session.execute(delete(SLOTS).where(S.id == slot_id, S.holder == holder))


async def renew(
    session: AsyncSession, *, slot_ids: Sequence[int], holder: str, expires_epoch: float
) -> None:
    """Side effect: the holder's slot rows among `slot_ids` (the grants it still holds)
    expire at `expires_epoch` instead (a live worker's heartbeat); gone ones stay gone."""
    if slot_ids:
        await session.execute(
            update(SLOTS)
            .where(S.id.in_(list(slot_ids)), S.holder == holder)
            .values(expires_epoch=expires_epoch)
        )


async def unhold_all(session: AsyncSession, *, holders: Sequence[str]) -> int:
    """Side effect: every slot row of these holders (dead workers, or one stopping) is
    deleted, whatever its connection. Returns how many."""
    if not holders:
        return 0
    result = await session.execute(delete(SLOTS).where(S.holder.in_(list(holders))))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def purge_expired(session: AsyncSession, *, connection_id: int, now: float) -> None:
    """Side effect: the connection's expired slot rows (holders that died) are deleted.
    Run under the bucket's lock, so two purges never contend for the same rows."""
    await session.execute(
        delete(SLOTS).where(S.connection_id == connection_id, S.expires_epoch <= now)
    )


async def blocked_until(session: AsyncSession, *, connection_id: int) -> float:
    """When the connection's push-back block ends, in epoch seconds; 0.0 when it never was
    blocked (read only: one row by its key)."""
    value = await session.scalar(
        select(K.blocked_until_epoch).where(K.connection_id == connection_id)
    )
    return float(value or 0.0)


async def block(session: AsyncSession, *, connection_id: int, until: float) -> bool:
    """Side effects: no grant before `until` (an earlier block is extended, never
    shortened); the bucket is drained and refills only from then. False when the row does
    not exist yet."""
    at = bindparam("until", until, type_=Float)
    result = await session.execute(
        update(BUCKETS)
        .where(K.connection_id == connection_id)
        .values(
            blocked_until_epoch=greatest(K.blocked_until_epoch, at),
            refilled_epoch=greatest(K.refilled_epoch, at),
            tokens=0.0,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _held(connection_id: int, at: ColumnElement[float]) -> ColumnElement[Any]:
    """Sends held on the connection by unexpired grants, every holder together."""
    return (
        select(func.coalesce(func.sum(S.sends), 0))
        .where(S.connection_id == connection_id, S.expires_epoch > at)
        .scalar_subquery()
    )


def _expired(connection_id: int, at: ColumnElement[float]) -> ColumnElement[bool]:
    return exists().where(S.connection_id == connection_id, S.expires_epoch <= at)
