"""Webhooks: the endpoints, one endpoint's deliveries with their attempts, a new
endpoint (its secret shown once), a test delivery.

    GET  /webhooks                  the endpoints (never a secret)
    POST /webhooks                  subscribe a URL             (admin, owner)
    GET  /webhooks/{id}             its deliveries, oldest first (paged): attempts, last answer
    POST /webhooks/{id}/test        queue a `test` delivery     (admin, owner)
    POST /webhooks/{id}/enabled     pause or resume deliveries  (admin, owner)
    POST /webhooks/{id}/delete      delete it and its deliveries (admin, owner)

A new URL is checked by `webhooks.service.checked_url` (the outbound policy of
`net/ssrf.py`, as the API's) before the write transaction opens: the check resolves
the host. The secret is in the answer to the POST only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import DatabaseDep, SessionDep, SettingsDep, WriteSessionDep
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import InvalidInput
from tidings.event_types import EVENT_TYPES
from tidings.webhooks import service as webhooks
from tidings.webhooks.routes import audited_webhook, delivery_out
from tidings.webhooks.schemas import ALL, WebhookCreate

router = page_router()
PAGE = 100


async def _index(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                 **context: object) -> Response:  # fmt: skip
    found = await webhooks.list_endpoints(session, org_id=viewer.org_id, after_id=None, limit=500)
    context.setdefault("errors", [])
    context.setdefault("form", {})
    return render(request, "webhooks/list.html", viewer, status_code=status, endpoints=found,
                  event_types=[ALL, *EVENT_TYPES], **context)  # fmt: skip


@router.get("/webhooks")
async def webhook_list(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    return await _index(request, viewer, session)


@router.post("/webhooks")
async def create(
    request: Request,
    viewer: ManageViewer,
    db: DatabaseDep,
    settings: SettingsDep,
    url: Annotated[str, Form(max_length=4000)] = "",
    event_type: Annotated[list[str], Form(max_length=50)] = [],  # noqa: B006
) -> Response:
    try:
        body = validated(WebhookCreate, {"url": url.strip(), "event_types": event_type})
        await webhooks.checked_url(body.url, policy=settings.webhook_policy)
    except InvalidInput as exc:
        async with db.transaction(write=False) as session:
            return await _index(request, viewer, session, status=422, errors=exc.errors,
                                form={"url": url, "event_types": event_type})  # fmt: skip
    async with db.transaction() as session:
        endpoint = await webhooks.create_endpoint(session, org_id=viewer.org_id, body=body)
        await audit.record(session, org_id=viewer.org_id, by=viewer,
                           action=Action.WEBHOOK_CREATE, target_id=endpoint.id,
                           changes=diff(None, audited_webhook(endpoint)))  # fmt: skip
        return await _index(request, viewer, session, status=201, created=endpoint,
                            secret=endpoint.secret)  # fmt: skip


@router.get("/webhooks/{webhook_id}")
async def endpoint_page(
    request: Request,
    webhook_id: int,
    viewer: ReadViewer,
    session: SessionDep,
    after: Annotated[int | None, Query(ge=0, lt=2**63)] = None,
) -> Response:
    endpoint = await webhooks.get_endpoint(session, org_id=viewer.org_id, endpoint_id=webhook_id)
    found = await webhooks.list_deliveries(
        session, org_id=viewer.org_id, endpoint_id=webhook_id, after_id=after, limit=PAGE + 1
    )
    shown = [delivery_out(d) for d in found[:PAGE]]
    next_after = shown[-1].id if len(found) > PAGE and shown else None
    return render(request, "webhooks/endpoint.html", viewer, endpoint=endpoint,
                  deliveries=shown, next_after=next_after)  # fmt: skip


@router.post("/webhooks/{webhook_id}/test")
async def send_test(webhook_id: int, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    delivery = await webhooks.send_test(session, org_id=viewer.org_id, endpoint_id=webhook_id)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.WEBHOOK_TEST,
                       target_id=webhook_id, changes={"delivery_id": delivery.id})  # fmt: skip
    return redirect(f"/webhooks/{webhook_id}", viewer, flash=f"Test delivery {delivery.id} queued")


@router.post("/webhooks/{webhook_id}/enabled")
async def set_enabled(
    webhook_id: int,
    viewer: ManageViewer,
    session: WriteSessionDep,
    enabled: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Pause or resume deliveries, as `PATCH …/webhooks/{id}` with `enabled`."""
    before = audited_webhook(
        await webhooks.get_endpoint(session, org_id=viewer.org_id, endpoint_id=webhook_id)
    )
    endpoint = await webhooks.update_endpoint(session, org_id=viewer.org_id,
                                              endpoint_id=webhook_id,
                                              changes={"enabled": enabled == "true"})  # fmt: skip
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.WEBHOOK_UPDATE,
                       target_id=webhook_id,
                       changes=diff(before, audited_webhook(endpoint)))  # fmt: skip
    state = "enabled" if endpoint.enabled else "disabled"
    return redirect(f"/webhooks/{webhook_id}", viewer, flash=f"Webhook {webhook_id} {state}")


@router.post("/webhooks/{webhook_id}/delete")
async def delete(webhook_id: int, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    before = audited_webhook(
        await webhooks.get_endpoint(session, org_id=viewer.org_id, endpoint_id=webhook_id)
    )
    await webhooks.delete_endpoint(session, org_id=viewer.org_id, endpoint_id=webhook_id)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.WEBHOOK_DELETE,
                       target_id=webhook_id, changes=diff(before, None))  # fmt: skip
    return redirect("/webhooks", viewer, flash=f"Webhook {webhook_id} deleted")
