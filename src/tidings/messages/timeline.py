"""One message's story, oldest first: made (queued, held or skipped), its attempts, sent or
failed, then what its events say (delivered, deferred, bounced, opened, clicked…).

Read from what the API reads (`get_message`, `messages.service.attempts`,
`events.service.list_events`): each attempt that did not end the message is kept with
its connection and reason (`message_attempts`), the last one is the message row, and an
event is kept for each outcome and report. `steps` is a pure function of the three, so
the CLI and the console show the same story.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from tidings.events.models import Event
from tidings.events.service import list_events
from tidings.messages.service import Attempt, attempts, get_message
from tidings.outbox.models import Message
from tidings.outbox.outcomes import FAILED_OVER, RETRIED
from tidings.outbox.status import MessageStatus

MAX_EVENTS = 1_000
"""Events read per message: far more than any message gathers (one per kind and link)."""

_ENDED_WITHOUT_EVENT = frozenset({MessageStatus.SKIPPED, MessageStatus.CANCELLED})


@dataclass(frozen=True, slots=True)
class Step:
    """`at` None: not happened yet (a queued message's next attempt has a time, though)."""

    at: datetime | None
    what: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    message: Message
    attempts: list[Attempt]
    events: list[Event]
    steps: list[Step]


async def timeline(session: AsyncSession, *, org_id: int, message_id: int) -> Timeline:
    """The org's message (NotFound for another org's) with its attempts, events and steps
    (read only)."""
    message = await get_message(session, org_id=org_id, message_id=message_id)
    tried = await attempts(session, message=message)
    events = await list_events(
        session, org_id=org_id, after_id=None, limit=MAX_EVENTS, message_id=message.id
    )
    return Timeline(message, tried, events, steps(message, events, tried))


def _event_detail(event: Event) -> str | None:
    data = event.data or {}
    parts = [f"{key} {data[key]}" for key in ("reason", "url", "code", "status") if data.get(key)]
    if event.is_bot:
        parts.append(f"bot ({data.get('bot', 'flagged')}), not counted")
    parts.append(f"from {event.source}")
    return "; ".join(parts)


def _attempt_detail(message: Message, attempt: Attempt) -> str:
    if attempt.connection_id is not None:
        name = attempt.connection_name or "a connection since removed"
        where = f"through {name} (connection {attempt.connection_id})"
    else:
        where = "to the sink" if message.is_test else "before any connection"
    told = f"; {attempt.reason}" if attempt.reason else ""
    return f"{attempt.attempt} {where}: {attempt.outcome}{told}"


def steps(
    message: Message, events: Sequence[Event], attempts: Sequence[Attempt] = ()
) -> list[Step]:
    """The message's steps in time order (a pure function of the row, its events and its
    attempts). Each attempt is a step, with its connection and how it ended, unless the
    message was sent to the sink at its only attempt (its `sent` event tells it all)."""
    status = MessageStatus(message.status)
    made = "held" if status is MessageStatus.HELD else "queued"
    due = f"due {message.due_at.isoformat(timespec='seconds')}"
    found = [Step(message.created_at, made, due if message.due_at > message.created_at else None)]
    tried = f"{message.attempts} attempt{'s' if message.attempts > 1 else ''}"
    if status is MessageStatus.QUEUED and message.attempts and message.reason:
        found.append(Step(None, "retrying", f"{tried}; last: {message.reason}; next {due}"))
    telling = message.attempts > 1 or any(a.connection_id is not None for a in attempts)
    for attempt in attempts:
        if telling or attempt.outcome in (RETRIED, FAILED_OVER):
            at = attempt.at or message.finished_at or message.created_at
            found.append(Step(at, "attempt", _attempt_detail(message, attempt)))
    if status is MessageStatus.SENDING:
        found.append(Step(None, "sending", f"attempt {message.attempts}, with a worker now"))
    found += [Step(e.occurred_at, e.type, _event_detail(e)) for e in events]
    if status in _ENDED_WITHOUT_EVENT:
        found.append(Step(message.finished_at or message.created_at, status.value, message.reason))
    return sorted(found, key=lambda s: (s.at is None, s.at or message.created_at))
