"""Webhook endpoints of an org, their deliveries, and queuing deliveries for events.

A URL is checked (`checked_url`, with `tidings.net.ssrf.check_url`) when an endpoint is
created and when its URL changes, by the entry point before it opens the write
transaction: the check resolves the host, and a tenant's slow DNS must not hold the
transaction (on SQLite, the process's write turn). The delivery loop checks the URL again
at every connection (`tidings.webhooks.delivery`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import utcnow
from tidings.db.owned import get_owned, owned_page
from tidings.errors import InvalidInput
from tidings.net.ssrf import STRICT, OutboundPolicy, Resolver, UnsafeURL
from tidings.webhooks import signing
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint
from tidings.webhooks.schemas import ALL, WebhookChanges, WebhookCreate

TEST_EVENT = "test"


async def checked_url(
    url: str, *, policy: OutboundPolicy = STRICT, resolver: Resolver | None = None
) -> str:
    """`url` if an endpoint may be saved with it, else InvalidInput on `url` (see the
    module docstring: run it before the write transaction)."""
    try:
        await policy.check_url(url, resolver=resolver)
    except UnsafeURL as exc:
        raise InvalidInput.field("url", f"refused: {exc.reason}") from None
    return url


async def create_endpoint(
    session: AsyncSession, *, org_id: int, body: WebhookCreate
) -> WebhookEndpoint:
    """A new endpoint with a fresh secret (the caller shows it once); the caller has
    checked `body.url` with `checked_url`."""
    endpoint = WebhookEndpoint(
        org_id=org_id,
        url=body.url,
        event_types=body.event_types,
        secret=signing.generate_secret(),
        enabled=body.enabled,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(session: AsyncSession, *, org_id: int, endpoint_id: int) -> WebhookEndpoint:
    return await get_owned(
        session, WebhookEndpoint, org_id=org_id, ident=endpoint_id, what="webhook"
    )


async def list_endpoints(
    session: AsyncSession, *, org_id: int, after_id: int | None, limit: int
) -> Sequence[WebhookEndpoint]:
    page = owned_page(WebhookEndpoint, org_id=org_id, after_id=after_id, limit=limit)
    return (await session.scalars(page)).all()


async def update_endpoint(
    session: AsyncSession,
    *,
    org_id: int,
    endpoint_id: int,
    changes: WebhookChanges,
) -> WebhookEndpoint:
    """Change an endpoint; the caller has checked a new `url` with `checked_url`."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    if "url" in changes:
        endpoint.url = changes["url"]
    if "event_types" in changes:
        endpoint.event_types = changes["event_types"]
    if "enabled" in changes:
        endpoint.enabled = changes["enabled"]
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, *, org_id: int, endpoint_id: int) -> None:
    """Delete an endpoint and its deliveries, pending ones included."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    await session.delete(endpoint)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, *, org_id: int, endpoint_id: int, after_id: int | None, limit: int
) -> Sequence[WebhookDelivery]:
    """The endpoint's deliveries, oldest first (cursor pages)."""
    await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    page = owned_page(WebhookDelivery, org_id=org_id, after_id=after_id, limit=limit)
    return (await session.scalars(page.where(WebhookDelivery.endpoint_id == endpoint_id))).all()


async def send_test(
    session: AsyncSession, *, org_id: int, endpoint_id: int, now: datetime | None = None
) -> WebhookDelivery:
    """Queue a `test` delivery to the endpoint (enabled or not: it is sent once enabled)."""
    endpoint = await get_endpoint(session, org_id=org_id, endpoint_id=endpoint_id)
    at = now or utcnow()
    delivery = WebhookDelivery(
        org_id=org_id,
        endpoint_id=endpoint.id,
        event_id=None,
        event_type=TEST_EVENT,
        payload={"type": TEST_EVENT, "timestamp": at.isoformat(), "data": {}},
        next_attempt_at=at,
        created_at=at,
    )
    session.add(delivery)
    await session.flush()
    return delivery


class Deliverable(Protocol):
    """What a delivery needs of an event (a stored `tidings.events.models.Event`)."""

    id: int
    org_id: int
    type: str
    source: str
    message_id: int | None
    broadcast_id: int | None
    campaign_id: int | None
    is_bot: bool
    is_test: bool
    data: dict[str, Any] | None
    occurred_at: datetime


def event_payload(event: Deliverable) -> dict[str, Any]:
    """The JSON body of an event's deliveries (docs/webhooks.md shows it)."""
    occurred = event.occurred_at or utcnow()
    return {
        "type": event.type,
        "timestamp": occurred.isoformat(),
        "data": {
            "event_id": event.id,
            "message_id": event.message_id,
            "broadcast_id": event.broadcast_id,
            "campaign_id": event.campaign_id,
            "source": event.source,
            "is_bot": bool(event.is_bot),
            "is_test": bool(event.is_test),
            "details": event.data or {},
        },
    }


async def enqueue_deliveries(session: AsyncSession, *, events: Sequence[Deliverable]) -> int:
    """Query helper (no commit): one pending delivery per event × enabled endpoint of the
    event's org subscribed to its type (or to "*"). The events must have their ids (be
    flushed). One SELECT of the orgs' endpoints, one multi-row INSERT; returns the count."""
    if not events:
        return 0
    org_ids = {event.org_id for event in events}
    rows = await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.org_id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.org_id.in_(org_ids), WebhookEndpoint.enabled.is_(True)
        )
    )
    by_org: dict[int, list[tuple[int, set[str]]]] = defaultdict(list)
    for endpoint_id, org_id, types in rows:
        by_org[org_id].append((endpoint_id, set(types or ())))
    if not by_org:
        return 0
    now = utcnow()
    values = [
        {
            "org_id": event.org_id,
            "endpoint_id": endpoint_id,
            "event_id": event.id,
            "event_type": event.type,
            "payload": event_payload(event),
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in events
        for endpoint_id, types in by_org.get(event.org_id, ())
        if event.type in types or ALL in types
    ]
    if values:
        await session.execute(insert(WebhookDelivery), values)
    return len(values)
