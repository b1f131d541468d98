"""Applying bounce and complaint reports to an org: events, suppressions, soft bounces.

    process(raw) ── parse → one NewEvent per report matched to one of the org's messages
        └─ record_events (idempotent on (org, "dsn"|"arf", sha256(report id, recipient)))
        └─ for each event that was new:
             bounced    → suppress_hard_bounce(source="dsn"), as a refusal while sending;
                          the campaign's fallback on the other channel, sent within the window
             complained → suppress(reason="complaint", source="arf")
             deferred   → note_soft_bounce (suppressed at TIDINGS_SOFT_BOUNCE_LIMIT in a row)
             delivered  → reset_soft_bounces

The address acted on is the message's own recipient (what we sent to), not the report's
Final-Recipient, which forwarding may have rewritten. A report is ignored when its original
is not one of the org's messages (a foreign or forged report, or no Message-ID; matched
by the Message-ID each email was stored with, `_originals`): nothing
is suppressed on an address alone. Only new events act, so reading the same report again,
from the webhook or a mailbox, changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.bounces.parse import Report, legacy_ids, parse
from tidings.broadcasts.fallback import fall_back
from tidings.connections.models import Connection
from tidings.connections.service import connection_by_token
from tidings.db.base import utcnow
from tidings.events.service import NewEvent, record_events
from tidings.outbox.models import Message
from tidings.suppressions.service import (
    note_soft_bounce,
    reset_soft_bounces,
    suppress,
    suppress_hard_bounce,
)

FALLBACK_WINDOW = timedelta(days=1)
"""How long after it was sent a hard bounce sends a message's fallback, by default
(`TIDINGS_FALLBACK_BOUNCE_WINDOW_SECONDS`)."""


def external_id(report: Report, recipient: str) -> str:
    """The idempotency key of one report about one recipient."""
    key = f"{report.report_id}\n{recipient}\n{report.kind}"
    return hashlib.sha256(key.encode()).hexdigest()


async def authorised_connection(
    session: AsyncSession, *, connection_id: int, token: str
) -> Connection:
    """The email connection whose `bounce_token` this is, else NotFound."""
    return await connection_by_token(
        session,
        connection_id=connection_id,
        channel="email",
        credential="bounce_token",
        token=token,
        what="bounce endpoint",
    )


async def receive(
    session: AsyncSession,
    *,
    connection_id: int,
    token: str,
    raw: bytes,
    soft_bounce_limit: int,
    fallback_window: timedelta = FALLBACK_WINDOW,
) -> list[str]:
    """The webhook: authenticate, then `process` (in the caller's write transaction)."""
    connection = await authorised_connection(session, connection_id=connection_id, token=token)
    return await process(
        session, org_id=connection.org_id, raw=raw, soft_bounce_limit=soft_bounce_limit,
        fallback_window=fallback_window,
    )  # fmt: skip


async def process(
    session: AsyncSession,
    *,
    org_id: int,
    raw: bytes,
    soft_bounce_limit: int,
    fallback_window: timedelta = FALLBACK_WINDOW,
) -> list[str]:
    """Apply the reports in one raw message to the org (in the caller's write transaction).
    A hard bounce of a message sent within `fallback_window` sends its campaign's
    fallback (`broadcasts.fallback`). Returns, per report, its kind when it was new,
    `duplicate` when already applied, or `ignored`."""
    reports = parse(raw)
    if not reports:
        return []
    messages = await _originals(
        session, org_id=org_id, message_ids={r.original for r in reports if r.original}
    )
    outcomes: list[str] = []
    for report in reports:
        row = messages.get(report.original) if report.original else None
        if row is None or not row.recipient:
            outcomes.append("ignored")
            continue
        source = "arf" if report.kind == "complained" else "dsn"
        data = {k: v for k, v in (("status", report.status), ("diagnostic", report.diagnostic),
                                  ("feedback_type", report.feedback_type),
                                  ("recipient", report.recipient)) if v}  # fmt: skip
        new = await record_events(
            session,
            events=[
                NewEvent(
                    org_id=org_id,
                    type=report.kind,
                    source=source,
                    external_id=external_id(report, row.recipient),
                    message_id=row.id,
                    broadcast_id=row.broadcast_id,
                    campaign_id=row.campaign_id,
                    data=data or None,
                )
            ],
        )
        if not new:
            outcomes.append("duplicate")
            continue
        address = row.recipient
        if report.kind == "bounced":
            now = utcnow()
            await fall_back(
                session, message_ids=[row.id], now=now, sent_since=now - fallback_window
            )
            await suppress_hard_bounce(
                session,
                org_id=org_id,
                channel="email",
                address=address,
                source=source,
                note=report.diagnostic or report.status,
            )
        elif report.kind == "complained":
            await suppress(
                session,
                org_id=org_id,
                channel="email",
                address=address,
                reason="complaint",
                source=source,
                note=report.feedback_type,
            )
        elif report.kind == "deferred":
            await note_soft_bounce(
                session,
                org_id=org_id,
                channel="email",
                address=address,
                limit=soft_bounce_limit,
                source=source,
            )
        else:
            await reset_soft_bounces(session, org_id=org_id, address=address)
        outcomes.append(report.kind)
    return outcomes


async def _originals(
    session: AsyncSession, *, org_id: int, message_ids: set[str]
) -> dict[str, Any]:
    """The org's emails with these Message-IDs, by Message-ID: the stored random ones,
    and those of the form used before migration 0025 (message and campaign ids, both
    matched)."""
    if not message_ids:
        return {}
    columns = (Message.id, Message.recipient, Message.broadcast_id, Message.campaign_id)
    mine = (Message.org_id == org_id, Message.channel == "email")
    found: dict[str, Any] = {}
    for row in await session.execute(
        select(Message.email_message_id, *columns).where(
            *mine, Message.email_message_id.in_(sorted(message_ids))
        )
    ):
        found[str(row.email_message_id)] = row
    legacy = {m: ids for m in message_ids - found.keys() if (ids := legacy_ids(m)) is not None}
    if legacy:
        wanted = {ids.message_id for ids in legacy.values()}
        rows = await session.execute(select(*columns).where(*mine, Message.id.in_(wanted)))
        by_id: dict[int, Any] = {row.id: row for row in rows}
        for message_id, ids in legacy.items():
            old = by_id.get(ids.message_id)
            if old is not None and old.campaign_id == ids.campaign_id:
                found[message_id] = old
    return found
