from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from tidings.api.deps import ManageKey, ReadKey, SessionDep, SettingsDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import Secret, diff, view
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.webhooks import service, signing
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint
from tidings.webhooks.schemas import (
    DeliveryOut,
    WebhookChanges,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)

router = APIRouter(prefix="/orgs/{org_id}/webhooks", tags=["webhooks"], route_class=IdempotentRoute)


def webhook_out(e: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=e.id,
        url=e.url,
        event_types=e.event_types,
        enabled=e.enabled,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


def audited_webhook(e: WebhookEndpoint) -> dict[str, object]:
    """What the audit shows of a webhook: its fields, and whether its secret changed."""
    return view(webhook_out(e)) | {"secret": Secret(e.secret)}


def delivery_out(d: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        endpoint_id=d.endpoint_id,
        webhook_id=signing.message_id(d.id),
        event_id=d.event_id,
        event_type=d.event_type,
        payload=d.payload,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
    )


# The URL is checked by a dependency declared after the key and before the write session:
# the check resolves the host, and must not hold the write transaction (see the service).


async def _checked_create(body: WebhookCreate, settings: SettingsDep) -> WebhookCreate:
    await service.checked_url(body.url, policy=settings.webhook_policy)
    return body


async def _checked_update(body: WebhookUpdate, settings: SettingsDep) -> WebhookUpdate:
    if body.url is not None:
        await service.checked_url(body.url, policy=settings.webhook_policy)
    return body


CheckedCreate = Annotated[WebhookCreate, Depends(_checked_create)]
CheckedUpdate = Annotated[WebhookUpdate, Depends(_checked_update)]


@router.post(
    "",
    status_code=201,
    summary="Subscribe a URL to event types (secret shown once)",
    dependencies=[IDEMPOTENT],
)
async def create_webhook(
    org_id: Id, key: ManageKey, body: CheckedCreate, session: WriteSessionDep
) -> WebhookCreated:
    endpoint = await service.create_endpoint(session, org_id=key.org_id, body=body)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.WEBHOOK_CREATE,
        target_id=endpoint.id,
        changes=diff(None, audited_webhook(endpoint)),
    )
    return WebhookCreated(**webhook_out(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", summary="List the org's webhooks (never their secrets)")
async def list_webhooks(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[WebhookOut]:
    rows = await service.list_endpoints(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, webhook_out)


@router.get("/{webhook_id}", summary="Read a webhook (never its secret)")
async def get_webhook(org_id: Id, webhook_id: Id, key: ReadKey, session: SessionDep) -> WebhookOut:
    return webhook_out(
        await service.get_endpoint(session, org_id=key.org_id, endpoint_id=webhook_id)
    )


@router.patch("/{webhook_id}", summary="Change a webhook's URL (checked again), types or state")
async def update_webhook(
    org_id: Id, webhook_id: Id, key: ManageKey, body: CheckedUpdate, session: WriteSessionDep
) -> WebhookOut:
    before = audited_webhook(
        await service.get_endpoint(session, org_id=key.org_id, endpoint_id=webhook_id)
    )
    endpoint = await service.update_endpoint(
        session,
        org_id=key.org_id,
        endpoint_id=webhook_id,
        changes=changes_of(body, WebhookChanges),
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.WEBHOOK_UPDATE,
        target_id=webhook_id,
        changes=diff(before, audited_webhook(endpoint)),
    )
    return webhook_out(endpoint)


@router.delete("/{webhook_id}", status_code=204, summary="Delete a webhook and its deliveries")
async def delete_webhook(
    org_id: Id, webhook_id: Id, key: ManageKey, session: WriteSessionDep
) -> Response:
    before = audited_webhook(
        await service.get_endpoint(session, org_id=key.org_id, endpoint_id=webhook_id)
    )
    await service.delete_endpoint(session, org_id=key.org_id, endpoint_id=webhook_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.WEBHOOK_DELETE,
        target_id=webhook_id,
        changes=diff(before, None),
    )
    return Response(status_code=204)


@router.get("/{webhook_id}/deliveries", summary="A webhook's deliveries, with their attempts")
async def list_deliveries(
    org_id: Id,
    webhook_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[DeliveryOut]:
    rows = await service.list_deliveries(
        session,
        org_id=key.org_id,
        endpoint_id=webhook_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    return paged(rows, limit, delivery_out)


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    summary="Queue a `test` delivery",
    dependencies=[IDEMPOTENT],
)
async def test_webhook(
    org_id: Id, webhook_id: Id, key: ManageKey, session: WriteSessionDep
) -> DeliveryOut:
    delivery = await service.send_test(session, org_id=key.org_id, endpoint_id=webhook_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.WEBHOOK_TEST,
        target_id=webhook_id,
        changes={"delivery_id": delivery.id},
    )
    return delivery_out(delivery)
