from __future__ import annotations

from fastapi import APIRouter, Response

from tidings.api.deps import ManageKey, ReadKey, SessionDep, WriteSessionDep
from tidings.api.fields import Id
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.applications import service
from tidings.applications.schemas import (
    ApplicationCreate,
    ApplicationOut,
    IntegrationIn,
    IntegrationOut,
)
from tidings.applications.service import WithIntegrations
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute

router = APIRouter(
    prefix="/orgs/{org_id}/applications", tags=["applications"], route_class=IdempotentRoute
)


def _out(item: WithIntegrations) -> ApplicationOut:
    app = item.application
    return ApplicationOut(
        id=app.id,
        key=app.key,
        name=app.name,
        sms_sender=app.sms_sender,
        connection_id=app.connection_id,
        integrations=[IntegrationOut.model_validate(i) for i in item.integrations],
        created_at=app.created_at,
        updated_at=app.updated_at,
    )


@router.post(
    "",
    status_code=201,
    summary="Create an application and its integrations",
    dependencies=[IDEMPOTENT],
)
async def create_application(
    org_id: Id, body: ApplicationCreate, key: ManageKey, session: WriteSessionDep
) -> ApplicationOut:
    application = _out(await service.create_application(session, org_id=key.org_id, body=body))
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.APPLICATION_CREATE,
        target_id=application.id,
        changes=diff(None, view(application)),
    )
    return application


@router.get("", summary="List applications")
async def list_applications(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[ApplicationOut]:
    rows = await service.list_applications(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, _out, key=lambda a: a.application.id)


@router.get("/{application_id}", summary="Read an application")
async def get_application(
    org_id: Id, application_id: Id, key: ReadKey, session: SessionDep
) -> ApplicationOut:
    item = await service.get_application(session, org_id=key.org_id, application_id=application_id)
    return _out(item)


@router.put(
    "/{application_id}/integrations",
    summary="Add an integration, or change where an existing one (by type) leads",
)
async def put_integration(
    org_id: Id, application_id: Id, body: IntegrationIn, key: ManageKey, session: WriteSessionDep
) -> IntegrationOut:
    before = view(
        _out(
            await service.get_application(session, org_id=key.org_id, application_id=application_id)
        )
    )
    integration = await service.put_integration(
        session, org_id=key.org_id, application_id=application_id, body=body
    )
    after = _out(
        await service.get_application(session, org_id=key.org_id, application_id=application_id)
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.APPLICATION_INTEGRATION_PUT,
        target_id=application_id,
        changes=diff(before, view(after)),
    )
    return IntegrationOut.model_validate(integration)


@router.delete("/{application_id}", status_code=204, summary="Delete an application")
async def delete_application(
    org_id: Id, application_id: Id, key: ManageKey, session: WriteSessionDep
) -> Response:
    before = view(
        _out(
            await service.get_application(session, org_id=key.org_id, application_id=application_id)
        )
    )
    await service.delete_application(session, org_id=key.org_id, application_id=application_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.APPLICATION_DELETE,
        target_id=application_id,
        changes=diff(before, None),
    )
    return Response(status_code=204)
