from __future__ import annotations

from fastapi import APIRouter

from tidings.api.deps import ManageKey, ReadKey, RendererDep, SessionDep, WriteSessionDep
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.patch import changes_of
from tidings.templates import service
from tidings.templates.schemas import (
    PreviewOut,
    PreviewRequest,
    TemplateChanges,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)

router = APIRouter(prefix="/orgs/{org_id}/templates", tags=["templates"])


@router.post("", status_code=201, summary="Create a template (compiled now: errors name the part)")
async def create_template(
    org_id: int,
    body: TemplateCreate,
    key: ManageKey,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> TemplateOut:
    template = await service.create_template(
        session, org_id=key.org_id, renderer=renderer, **body.model_dump()
    )
    return TemplateOut.model_validate(template)


@router.get("", summary="List templates")
async def list_templates(
    org_id: int,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[TemplateOut]:
    rows = await service.list_templates(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, TemplateOut.model_validate)


@router.get("/{template_id}", summary="Read a template")
async def get_template(
    org_id: int, template_id: int, key: ReadKey, session: SessionDep
) -> TemplateOut:
    template = await service.get_template(session, org_id=key.org_id, template_id=template_id)
    return TemplateOut.model_validate(template)


@router.patch("/{template_id}", summary="Change a template (compiled again)")
async def update_template(
    org_id: int,
    template_id: int,
    body: TemplateUpdate,
    key: ManageKey,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> TemplateOut:
    template = await service.update_template(
        session,
        org_id=key.org_id,
        template_id=template_id,
        renderer=renderer,
        changes=changes_of(body, TemplateChanges),
    )
    return TemplateOut.model_validate(template)


@router.post(
    "/{template_id}/preview",
    summary="Render for a contact or variables; an undefined variable is an error here",
)
async def preview_template(
    org_id: int,
    template_id: int,
    body: PreviewRequest,
    key: ReadKey,
    session: SessionDep,
    renderer: RendererDep,
) -> PreviewOut:
    result = await service.preview(
        session,
        org_id=key.org_id,
        template_id=template_id,
        renderer=renderer,
        contact_id=body.contact_id,
        variables=body.variables,
    )
    return PreviewOut(
        subject=result.subject,
        html=result.html,
        text=result.text,
        sms_segments=result.sms.segments if result.sms else None,
        sms_encoding=result.sms.encoding if result.sms else None,
    )
