"""The `sent` and `failed` events of a batch's outcomes, and their webhook deliveries:
written set-based with the outcomes, one statement each, none per message."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import String, Table, case, false, literal, null, select, type_coerce
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.dialect import insert_selected_ignoring_conflicts, json_object, one_of
from tidings.events.models import Event
from tidings.outbox.models import Message
from tidings.outbox.outcomes import Written
from tidings.outbox.status import MessageStatus
from tidings.webhooks import service as webhooks
from tidings.webhooks.models import WebhookEndpoint
from tidings.webhooks.schemas import ALL as WEBHOOK_ALL

OUTCOME_SOURCE = "dispatcher"
"""The source of the `sent` and `failed` events the dispatcher records."""
EVENTS = cast(Table, Event.__table__)
MESSAGES = cast(Table, Message.__table__)
E = EVENTS.c
M = MESSAGES.c
OUTCOMES = (MessageStatus.SENT.value, MessageStatus.FAILED.value)


async def add_outcome_events(
    session: AsyncSession, *, message_ids: Sequence[int], now: datetime
) -> None:
    """Side effect: one `sent` or `failed` event per message of `message_ids` (just
    written), from its row: type = status, source "dispatcher", external id
    "<status>:<id>", a failure's reason in data, marked test as the message is. One
    INSERT … SELECT; a message that already has its event (it cannot, but for a replay)
    keeps the one it has."""
    if not message_ids:
        return
    failed_data = type_coerce(json_object(session, "reason", M.reason), E.data.type)
    stamp = literal(now, E.occurred_at.type)
    rows = select(
        M.org_id,
        M.id,
        M.broadcast_id,
        M.campaign_id,
        M.status,
        literal(OUTCOME_SOURCE),
        M.status + literal(":") + sql_cast(M.id, String),
        false(),
        M.is_test,
        case((M.status == MessageStatus.FAILED.value, failed_data), else_=null()),
        stamp,
        stamp,
    ).where(one_of(session, M.id, message_ids), M.status.in_(OUTCOMES))
    await session.execute(
        insert_selected_ignoring_conflicts(
            session,
            EVENTS,
            ["org_id", "message_id", "broadcast_id", "campaign_id", "type", "source",
             "external_id", "is_bot", "is_test", "data", "occurred_at", "created_at"],
            rows,
        )
    )  # fmt: skip


async def notify_outcome_events(session: AsyncSession, *, written: Sequence[Written]) -> None:
    """Side effect: webhook deliveries of the batch's `sent` / `failed` events, for the
    endpoints subscribed to them. Without such an endpoint in the batch's orgs (one small
    SELECT says so) the events are not even read back."""
    if not written:
        return
    orgs = {w.org_id for w in written}
    kinds = {w.status.value for w in written}
    subscribed = await session.scalars(
        select(WebhookEndpoint.event_types).where(
            WebhookEndpoint.org_id.in_(orgs), WebhookEndpoint.enabled.is_(True)
        )
    )
    if not any(set(types or ()) & (kinds | {WEBHOOK_ALL}) for types in subscribed):
        return
    events = await session.scalars(
        select(Event).where(
            Event.source == OUTCOME_SOURCE,
            Event.message_id.in_(sorted(w.message_id for w in written)),
            Event.type.in_(sorted(kinds)),
        )
    )
    await webhooks.enqueue_deliveries(session, events=list(events))
