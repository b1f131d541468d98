"""One message's story, oldest first: when it was queued, how many attempts it took
(and the last reason given), then each event recorded about it (sent or failed by the
dispatcher, delivered, bounced, opened, clicked … from reports and tracking), and how
it ended when no event says so (skipped, cancelled). Read only, scoped by org.

Retries are not events: the message row keeps the number of attempts and the reason of
the last one, which is what the timeline can tell of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.channels.models import SinkMessage
from tidings.events.models import Event
from tidings.messages.service import get_message
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus

MS = MessageStatus
MAX_EVENTS = 200  # a message's events are a handful; a bot storm of clicks is cut here


@dataclass(frozen=True, slots=True)
class Step:
    at: datetime
    what: str  # queued, held, sent, failed, delivered, opened, clicked, skipped, …
    detail: str | None = None
    source: str | None = None
    bot: bool = False


@dataclass(frozen=True, slots=True)
class Timeline:
    message: Message
    steps: list[Step]
    kept: list[SinkMessage]  # what the sink recorded of it (its rendered content)


def _detail(event: Event) -> str | None:
    data: dict[str, Any] = event.data or {}
    if "reason" in data:
        return str(data["reason"])
    if "position" in data:
        return f"link {data['position']}"
    return ", ".join(f"{k}: {v}" for k, v in sorted(data.items())) or None


async def timeline(session: AsyncSession, *, org_id: int, message_id: int) -> Timeline:
    message = await get_message(session, org_id=org_id, message_id=message_id)
    first = MS.HELD if message.status == MS.HELD else MS.QUEUED
    steps = [Step(message.created_at, first.value)]
    retrying = message.attempts and message.status == MS.QUEUED
    if message.attempts > 1 or retrying:  # one attempt that ended is its event alone
        tries = f"{message.attempts} attempt{'s' if message.attempts > 1 else ''}"
        last = message.reason if message.status not in (MS.SKIPPED, MS.CANCELLED) else None
        detail = f"{tries}; last: {last}" if last else tries
        steps.append(Step(message.sent_at or message.due_at, "attempted", detail))
    events = await session.scalars(
        select(Event)
        .where(Event.org_id == org_id, Event.message_id == message.id)
        .order_by(Event.occurred_at, Event.id)
        .limit(MAX_EVENTS)
    )
    steps += [Step(e.occurred_at, e.type, _detail(e), e.source, e.is_bot) for e in events]
    if message.status in (MS.SKIPPED, MS.CANCELLED):
        ended = message.finished_at or message.created_at
        steps.append(Step(ended, message.status, message.reason))
    kept = await session.scalars(
        select(SinkMessage)
        .where(SinkMessage.org_id == org_id, SinkMessage.message_id == message.id)
        .order_by(SinkMessage.id)
    )
    return Timeline(message, sorted(steps, key=lambda s: s.at), list(kept))
