from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import ManageKey, ReadKey, RendererDep, SessionDep, WriteSessionDep
from tidings.api.fields import Id, VersionNumber
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.patch import changes_of
from tidings.api.problems import answers
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.retirement import service as retirement
from tidings.templates import service
from tidings.templates.schemas import (
    PreviewOut,
    PreviewRequest,
    TemplateChanges,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
    TemplateVersionOut,
)

router = APIRouter(
    prefix="/orgs/{org_id}/templates", tags=["templates"], route_class=IdempotentRoute
)


async def _audited(session: AsyncSession, *, org_id: Id, template_id: Id) -> dict[str, object]:
    """The template as it is before an action, for the audit's diff."""
    template = await service.get_template(session, org_id=org_id, template_id=template_id)
    return view(TemplateOut.model_validate(template))


@router.post(
    "",
    status_code=201,
    summary="Create a template, as its version 1 (compiled now: errors name the part)",
    responses=answers(422),
    dependencies=[IDEMPOTENT],
)
async def create_template(
    org_id: Id,
    body: TemplateCreate,
    key: ManageKey,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> TemplateOut:
    template = TemplateOut.model_validate(
        await service.create_template(
            session, org_id=key.org_id, renderer=renderer, by=key.who, **body.model_dump()
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.TEMPLATE_CREATE,
        target_id=template.id,
        changes=diff(None, view(template)),
    )
    return template


@router.get("", summary="List templates")
async def list_templates(
    org_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[TemplateOut]:
    rows = await service.list_templates(
        session, org_id=key.org_id, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, TemplateOut.model_validate)


@router.get("/{template_id}", summary="Read a template", responses=answers(404))
async def get_template(
    org_id: Id, template_id: Id, key: ReadKey, session: SessionDep
) -> TemplateOut:
    template = await service.get_template(session, org_id=key.org_id, template_id=template_id)
    return TemplateOut.model_validate(template)


@router.patch(
    "/{template_id}",
    summary="Change a template (compiled again): a change of content is a new version",
    responses=answers(404, 409, 422),
)
async def update_template(
    org_id: Id,
    template_id: Id,
    body: TemplateUpdate,
    key: ManageKey,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> TemplateOut:
    before = await _audited(session, org_id=key.org_id, template_id=template_id)
    template = TemplateOut.model_validate(
        await service.update_template(
            session,
            org_id=key.org_id,
            template_id=template_id,
            renderer=renderer,
            changes=changes_of(body, TemplateChanges),
            by=key.who,
        )
    )
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.TEMPLATE_UPDATE,
        target_id=template_id,
        changes=diff(before, view(template)),
    )
    return template


@router.delete(
    "/{template_id}",
    status_code=204,
    summary="Delete a template: hidden, its versions kept for the sends that used them",
    responses=answers(404, 409),
)
async def delete_template(
    org_id: Id, template_id: Id, key: ManageKey, session: WriteSessionDep
) -> None:
    before = await _audited(session, org_id=key.org_id, template_id=template_id)
    await retirement.delete_template(session, org_id=key.org_id, template_id=template_id)
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.TEMPLATE_DELETE,
        target_id=template_id,
        changes=diff(before, None),
    )


@router.get(
    "/{template_id}/versions",
    summary="List a template's versions, oldest first (by number)",
    responses=answers(404),
)
async def list_versions(
    org_id: Id,
    template_id: Id,
    key: ReadKey,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[TemplateVersionOut]:
    rows = await service.list_versions(
        session,
        org_id=key.org_id,
        template_id=template_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    return paged(rows, limit, TemplateVersionOut.model_validate)


@router.get(
    "/{template_id}/versions/{number}",
    summary="Read one version of a template",
    responses=answers(404),
)
async def get_version(
    org_id: Id, template_id: Id, number: VersionNumber, key: ReadKey, session: SessionDep
) -> TemplateVersionOut:
    version = await service.get_version(
        session, org_id=key.org_id, template_id=template_id, number=number
    )
    return TemplateVersionOut.model_validate(version)


@router.post(
    "/{template_id}/versions/{number}/restore",
    summary="Make a version's content current again, as a new version",
    responses=answers(404, 409, 422),
    dependencies=[IDEMPOTENT],
)
async def restore_version(
    org_id: Id,
    template_id: Id,
    number: VersionNumber,
    key: ManageKey,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> TemplateOut:
    before = await _audited(session, org_id=key.org_id, template_id=template_id)
    template = TemplateOut.model_validate(
        await service.restore_version(
            session,
            org_id=key.org_id,
            template_id=template_id,
            number=number,
            renderer=renderer,
            by=key.who,
        )
    )
    changes = diff(before, view(template)) | {"restored_version": {"to": number}}
    await audit.record(
        session,
        org_id=key.org_id,
        by=key,
        action=Action.TEMPLATE_RESTORE,
        target_id=template_id,
        changes=changes,
    )
    return template


@router.post(
    "/{template_id}/preview",
    summary="Render for a contact or variables; an undefined variable is an error here",
    responses=answers(404, 422),
)
async def preview_template(
    org_id: Id,
    template_id: Id,
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
