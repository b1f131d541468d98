"""Delivery reports: providers tell us what became of the messages we handed them.

    POST/GET /reports/{connection_id}/{provider}[/{token}]
      └─ receive: the connection (404 if none of that kind)
           ├─ authenticate (token, X-Twilio-Signature or Standard Webhooks signature)
           │    fails → a `rejected_reports` row, then 401 / 403 (`Refused`: the route
           │            answers it, so that its write transaction commits the row)
           ├─ parse (`parsers`) fails → a row, then 422 (`Refused` too)
           └─ in the route's write transaction:
                find each report's message in the connection's org and channel
                  none, named by a provider id only, while a message of the org and
                    channel is being sent → a `pending_reports` row (`pending`)
                  one still queued or being sent → a `pending_reports` row (`pending`)
                  none, or sent longer than WINDOW ago → a `stale` row, not applied
                record_events (idempotent on (org, source, key)) → timestamps, status,
                  counters; then, for the events that were new:
                    delivered → reset_soft_bounces
                    bounced   → permanent: suppress (hard_bounce); else note_soft_bounce
                    complained → suppress (complaint)

A report can overtake its message's outcome: the provider answered the send and sent its
report before the dispatcher committed that answer (a batch's outcomes are written
together, after the whole batch was sent). Applied then, it would be lost: the provider
id it names is on no message yet, or (found by our id) the message is still `sending`,
and the outcome written next would set the status back to `sent`. Such a report waits in
`pending_reports`, and `pending.sweep` applies it once the outcome is written, or after
`pending.hold_for(lease)` (a provider id never written counts as stale). An unknown
provider id can only be that race while some message of the org and channel is
`sending`; this is checked before the lookup, so an outcome committed in between is
found, and with nothing in flight an unknown id is stale at once.

Replays are harmless: a report's key is its outcome for the SMS providers
(`<message id>:<event type>`, one delivery and one failure per message) and the sender's
report id for the generic format, so a replayed report is not new and moves nothing.

SMS failures count as soft bounces, never as immediate hard bounces: Kannel's, Infobip's
and Twilio's failure codes rarely tell "no such number" from "phone off for a week", and
suppressing a number on one failure would silence real subscribers. An address is
suppressed (`soft_bounces`) after `TIDINGS_SOFT_BOUNCE_LIMIT` failures with no delivery
between them. The generic format may say `permanent: true`, which suppresses at once.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.connections.models import Connection
from tidings.connections.service import token_matches
from tidings.db.base import utcnow
from tidings.errors import Forbidden, InvalidInput, NotFound, TidingsError, Unauthorized
from tidings.events.service import NewEvent, record_events
from tidings.outbox.models import Message
from tidings.outbox.status import UNSENT, MessageStatus
from tidings.reports import parsers
from tidings.reports.models import PendingReport, RejectedReport
from tidings.reports.parsers import Report
from tidings.suppressions.service import note_soft_bounce, reset_soft_bounces, suppress

WINDOW: Final = timedelta(days=7)
"""A report about a message sent longer ago than this is stale (providers give up on a
message within two days; anything later is a replay or a forgery)."""
TOLERANCE: Final = 300
"""Seconds a signed (Twilio aside) request's `webhook-timestamp` may be off from now."""
KINDS: Final = {"kannel": ("kannel",), "infobip": ("infobip",), "twilio": ("twilio",)}
"""Which connection kinds each provider route serves; the generic format serves any."""
LOOKUP_CHUNK: Final = 500
"""A message in these has no outcome written yet: a report about it waits."""


@dataclass(frozen=True, slots=True)
class Incoming:
    """A report request as the route read it. `urls` are the URLs the sender may have
    signed (the public one and the one the request arrived on)."""

    source: str  # kannel, infobip, twilio, json
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)  # query or form fields
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    token: str | None = None
    urls: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Outcome:
    accepted: int  # reports about a known message, recorded (new or a replay)
    stale: int  # about no message of the connection's org, or too old
    pending: int = 0  # about a provider id not recorded yet, while messages are in flight


@dataclass(frozen=True, slots=True)
class Refused:
    """A refused report request, counted in `rejected_reports`: the caller commits that
    row and answers `error` (raising it would roll the row back)."""

    error: TidingsError


async def receive(
    session: AsyncSession, *, connection_id: int, incoming: Incoming, soft_bounce_limit: int
) -> Outcome | Refused:
    """Authenticate, parse and apply one report request (see the module docstring), in the
    caller's write transaction. NotFound (nothing recorded) for an unknown endpoint."""
    connection = await session.get(Connection, connection_id)
    kinds = KINDS.get(incoming.source)
    if connection is None or (kinds is not None and connection.kind not in kinds):
        raise NotFound("report endpoint", connection_id)
    org_id, channel = connection.org_id, connection.channel
    refusal = _authenticate(connection.credentials, incoming)
    reports: list[Report] = []
    if refusal is None:
        try:
            reports = _parse(incoming)
        except parsers.Malformed as exc:
            refusal = InvalidInput.field("body", str(exc))
    if refusal is not None:
        session.add(
            RejectedReport(
                org_id=org_id, connection_id=connection_id, source=incoming.source,
                reason=_reason(refusal), created_at=utcnow(),
            )
        )  # fmt: skip
        await session.flush()
        return Refused(refusal)
    return await apply(
        session,
        org_id=org_id,
        channel=channel,
        connection_id=connection_id,
        source=incoming.source,
        reports=reports,
        soft_bounce_limit=soft_bounce_limit,
    )


def _authenticate(credentials: Mapping[str, object], incoming: Incoming) -> TidingsError | None:
    """None when the request is authentic, else the error to answer (its detail names
    the reason stored: unsigned, bad_signature or stale)."""
    if incoming.source in ("kannel", "infobip"):
        if token_matches(credentials.get("inbound_token"), incoming.token or ""):
            return None
        return Forbidden("bad_signature: the URL's token is not this connection's")
    if incoming.source == "twilio":
        given = incoming.headers.get("x-twilio-signature")
        if not given:
            return Unauthorized("unsigned: X-Twilio-Signature is missing")
        token = credentials.get("auth_token")
        if isinstance(token, str) and parsers.twilio_valid(
            token, list(incoming.urls), incoming.params, given
        ):
            return None
        return Forbidden("bad_signature: X-Twilio-Signature does not match")
    headers = incoming.headers
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    given = headers.get("webhook-signature")
    if not (msg_id and stamp and given):
        return Unauthorized("unsigned: webhook-id, webhook-timestamp and webhook-signature needed")
    secret = credentials.get("report_secret")
    try:
        timestamp = int(stamp)
        valid = isinstance(secret, str) and parsers.standard_valid(
            secret, msg_id=msg_id, timestamp=timestamp, body=incoming.body, given=given
        )
    except ValueError:
        valid = False
    if not valid:
        return Forbidden("bad_signature: webhook-signature does not match")
    if abs(time.time() - timestamp) > TOLERANCE:
        return Forbidden(f"stale: webhook-timestamp is more than {TOLERANCE} s from now")
    return None


def _parse(incoming: Incoming) -> list[Report]:
    if incoming.source == "kannel":
        return parsers.kannel(incoming.params)
    if incoming.source == "infobip":
        return parsers.infobip(incoming.body)
    if incoming.source == "twilio":
        return parsers.twilio(incoming.params)
    return parsers.generic(incoming.body)


def _reason(error: TidingsError) -> str:
    if isinstance(error, InvalidInput):
        return "malformed"
    return str(error).split(":", 1)[0]


async def apply(
    session: AsyncSession,
    *,
    org_id: int,
    channel: str,
    connection_id: int,
    source: str,
    reports: Sequence[Report],
    soft_bounce_limit: int,
    may_wait: bool = True,
) -> Outcome:
    """Record authenticated reports (query helper, in the caller's write transaction).
    Stale ones are counted in `rejected_reports` instead; with `may_wait`,
    those that may have overtaken their message's outcome are kept in `pending_reports`
    (see the module docstring)."""
    now = utcnow()
    # Before the lookup: an outcome committed after this check is found by it.
    in_flight = (
        may_wait
        and any(_by_provider_only(r) for r in reports)
        and await _sending(session, org_id=org_id, channel=channel)
    )
    messages = await _messages(session, org_id=org_id, channel=channel, reports=reports)
    events: list[NewEvent] = []
    effects: dict[tuple[int, str], tuple[Message, Report]] = {}
    stale = 0
    waiting: list[PendingReport] = []
    for report in reports:
        message = messages.get(("id", report.message_id)) or messages.get(
            ("provider", report.provider_id)
        )
        unknown_yet = message is None and in_flight and _by_provider_only(report)
        unsent = may_wait and message is not None and message.status in UNSENT
        if unknown_yet or unsent:
            if report.type is not None:  # else an intermediate state: it records nothing
                waiting.append(
                    PendingReport(
                        org_id=org_id, connection_id=connection_id, source=source,
                        provider_id=report.provider_id if message is None else None,
                        message_id=message.id if message is not None else None,
                        report=report_json(report), created_at=now,
                    )
                )  # fmt: skip
            continue
        sent = message.sent_at or message.created_at if message is not None else None
        if message is None or sent is None or sent < now - WINDOW:
            stale += 1
            continue
        if report.type is None:
            continue
        key = report.key if report.key is not None else f"{message.id}:{report.type}"
        external_id = f"{connection_id}:{key}" if source == "json" else key
        events.append(
            NewEvent(
                org_id=org_id, type=report.type, source=source, external_id=external_id,
                message_id=message.id, broadcast_id=message.broadcast_id,
                campaign_id=message.campaign_id, data=report.data or None,
                occurred_at=min(report.occurred_at or now, now),
            )
        )  # fmt: skip
        effects[(message.id, report.type)] = (message, report)
    if stale or waiting:
        session.add_all(
            RejectedReport(org_id=org_id, connection_id=connection_id, source=source,
                           reason="stale", created_at=now)
            for _ in range(stale)
        )  # fmt: skip
        session.add_all(waiting)
        await session.flush()
    for event in await record_events(session, events=events):
        assert event.message_id is not None
        message, report = effects[(event.message_id, event.type)]
        if message.recipient is None:  # erased
            continue
        await _follow(session, org_id=org_id, message=message, report=report,
                      limit=soft_bounce_limit, source=source)  # fmt: skip
    return Outcome(accepted=len(reports) - stale - len(waiting), stale=stale, pending=len(waiting))


def _by_provider_only(report: Report) -> bool:
    return report.message_id is None and report.provider_id is not None


async def _sending(session: AsyncSession, *, org_id: int, channel: str) -> bool:
    """Whether a message of the org on `channel` is being sent (claimed, its outcome not
    written yet); the partial index `ix_messages_leased` holds only those."""
    in_flight = exists().where(
        Message.status == MessageStatus.SENDING,
        Message.org_id == org_id,
        Message.channel == channel,
    )
    return bool(await session.scalar(select(in_flight)))


def report_json(report: Report) -> dict[str, Any]:
    """A parsed report as a JSON document (a pending report's `report`)."""
    return {
        "type": report.type,
        "message_id": report.message_id,
        "provider_id": report.provider_id,
        "key": report.key,
        "permanent": report.permanent,
        "occurred_at": report.occurred_at.isoformat() if report.occurred_at else None,
        "data": report.data,
    }


def report_from_json(document: Mapping[str, Any]) -> Report:
    occurred_at = document.get("occurred_at")
    return Report(
        document.get("type"),
        message_id=document.get("message_id"),
        provider_id=document.get("provider_id"),
        key=document.get("key"),
        permanent=bool(document.get("permanent")),
        occurred_at=datetime.fromisoformat(occurred_at) if occurred_at else None,
        data=dict(document.get("data") or {}),
    )


async def _follow(
    session: AsyncSession, *, org_id: int, message: Message, report: Report, limit: int, source: str
) -> None:
    """What a new event means for the address's suppression."""
    address = message.recipient
    assert address is not None
    if report.type == "delivered":
        await reset_soft_bounces(session, org_id=org_id, address=address)
    elif report.type == "bounced" and report.permanent:
        await suppress(session, org_id=org_id, channel=message.channel, address=address,
                       reason="hard_bounce", source=source)  # fmt: skip
    elif report.type == "bounced":
        await note_soft_bounce(session, org_id=org_id, channel=message.channel, address=address,
                               limit=limit, source=source)  # fmt: skip
    elif report.type == "complained":
        await suppress(session, org_id=org_id, channel=message.channel, address=address,
                       reason="complaint", source=source)  # fmt: skip


async def _messages(
    session: AsyncSession, *, org_id: int, channel: str, reports: Sequence[Report]
) -> dict[tuple[str, object], Message]:
    """The org's messages on `channel` the reports name, by ("id", id) and ("provider",
    provider id). Another org's message is never found: its report is stale."""
    ids = sorted({r.message_id for r in reports if r.message_id is not None})
    provider_ids = sorted({r.provider_id for r in reports if r.provider_id is not None})
    found: dict[tuple[str, object], Message] = {}
    for start in range(0, max(len(ids), len(provider_ids)), LOOKUP_CHUNK):
        chunk_ids = ids[start : start + LOOKUP_CHUNK]
        chunk_pids = provider_ids[start : start + LOOKUP_CHUNK]
        rows = await session.scalars(
            select(Message).where(
                Message.org_id == org_id,
                Message.channel == channel,
                or_(Message.id.in_(chunk_ids), Message.provider_id.in_(chunk_pids)),
            )
        )
        for message in rows:
            found[("id", message.id)] = message
            if message.provider_id is not None:
                found[("provider", message.provider_id)] = message
    return found


@dataclass(frozen=True, slots=True)
class RejectedCount:
    source: str
    reason: str
    count: int
    last_at: datetime


async def rejected_counts(session: AsyncSession, *, org_id: int) -> list[RejectedCount]:
    """How many of the org's reports were refused, per source and reason (read only)."""
    rows = await session.execute(
        select(
            RejectedReport.source,
            RejectedReport.reason,
            func.count(),
            func.max(RejectedReport.created_at),
        )
        .where(RejectedReport.org_id == org_id)
        .group_by(RejectedReport.source, RejectedReport.reason)
        .order_by(RejectedReport.source, RejectedReport.reason)
    )
    return [RejectedCount(s, r, n, last) for s, r, n, last in rows]
