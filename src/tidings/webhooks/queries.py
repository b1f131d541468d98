"""Every statement of the webhook delivery loop, each with its side effects.

A delivery row is its own queue entry: `pending` with a `next_attempt_at`, then
`delivered` or `failed`. A claim leases rows by moving `next_attempt_at` past the
attempt's timeout, so a worker that dies mid-attempt leaves rows that fall due again on
their own. PostgreSQL claims with SKIP LOCKED, so workers take disjoint batches; SQLite
has one writer at a time (BEGIN IMMEDIATE), which already makes the claim exclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import for_update
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint

DELIVERIES = cast(Table, WebhookDelivery.__table__)
ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
D = DELIVERIES.c
E = ENDPOINTS.c


@dataclass(frozen=True, slots=True)
class Claimed:
    """A leased delivery with what sending it needs."""

    id: int
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int  # including the attempt about to be made
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Attempted:
    """The outcome of one attempt: `status` pending (retry at `next_attempt_at`),
    delivered or failed."""

    delivery_id: int
    status: str
    next_attempt_at: datetime
    status_code: int | None
    error: str | None
    delivered_at: datetime | None = None


async def claim(
    session: AsyncSession, *, now: datetime, lease_until: datetime, limit: int
) -> list[Claimed]:
    """Lease up to `limit` due deliveries of enabled endpoints, oldest due first. Side
    effects: next_attempt_at → lease_until, attempts + 1. Caller commits at once."""
    due = (
        select(D.id)
        .join(ENDPOINTS, E.id == D.endpoint_id)
        .where(D.status == "pending", D.next_attempt_at <= now, E.enabled.is_(True))
        .order_by(D.next_attempt_at)
        .limit(limit)
    )
    due = for_update(session, due, of=DELIVERIES, skip_locked=True)
    claimed = await session.execute(
        update(DELIVERIES)
        .where(D.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=lease_until, attempts=D.attempts + 1)
        .returning(D.id)
    )
    ids = [row.id for row in claimed]
    if not ids:
        return []
    rows = await session.execute(
        select(D.id, E.url, E.secret, D.payload, D.attempts, D.created_at)
        .join(ENDPOINTS, E.id == D.endpoint_id)
        .where(D.id.in_(ids))
        .order_by(D.id)
    )
    return [Claimed(*row) for row in rows]


async def record(session: AsyncSession, *, outcomes: Sequence[Attempted]) -> None:
    """Write each attempt's outcome (one executemany UPDATE). Caller commits."""
    if not outcomes:
        return
    await session.execute(
        update(DELIVERIES)
        .where(D.id == bindparam("b_id"))
        .values(
            status=bindparam("b_status"),
            next_attempt_at=bindparam("b_next"),
            last_status_code=bindparam("b_code"),
            last_error=bindparam("b_error"),
            delivered_at=bindparam("b_delivered"),
        )
        .execution_options(synchronize_session=False),
        [
            {
                "b_id": o.delivery_id,
                "b_status": o.status,
                "b_next": o.next_attempt_at,
                "b_code": o.status_code,
                "b_error": o.error,
                "b_delivered": o.delivered_at,
            }
            for o in outcomes
        ],
    )


async def next_due(session: AsyncSession) -> datetime | None:
    """When the earliest pending delivery of an enabled endpoint falls due."""
    due: datetime | None = await session.scalar(
        select(func.min(D.next_attempt_at))
        .join(ENDPOINTS, E.id == D.endpoint_id)
        .where(D.status == "pending", E.enabled.is_(True))
    )
    return due
