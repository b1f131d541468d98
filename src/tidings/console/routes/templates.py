"""Templates: the list, an editor with a live preview, version history and restore.

    GET  /templates                               the org's templates
    GET  /templates/new                           a new template's form        (admin, owner)
    POST /templates                               create (version 1)           (admin, owner)
    GET  /templates/{id}                          the editor (every role reads it)
    POST /templates/{id}                          save: a change of content is a new version
    POST /templates/{id}/preview                  the live preview of what the editor holds
    GET  /templates/{id}/versions                 its versions, newest first, each shown
    POST /templates/{id}/versions/{n}/restore     version n's content again, as a new one

The preview renders the editor's parts, saved or not, for the contact chosen by its
address (or for no contact), through `templates.service.preview_content`: strictly (an
undefined variable is an error) and under the render budget, as the API's preview. The
HTML is shown in a sandboxed frame (`srcdoc`, no scripts), which inherits the console's
Content-Security-Policy: the email's inline styles are not applied there.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from tidings.api.deps import RendererDep, SessionDep, WriteSessionDep, roll_back_now
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.contacts import service as contacts
from tidings.errors import FieldError, InvalidInput
from tidings.templates import service as templates
from tidings.templates.schemas import (
    TemplateChanges,
    TemplateCreate,
    TemplateOut,
    TemplateUpdate,
)

router = page_router()
PARTS = ("subject", "html", "text")


def _text(form: FormData, name: str) -> str | None:
    """A part as the form holds it; an empty part is no part (None), as in the API."""
    value = form.get(name)
    return value if isinstance(value, str) and value.strip() else None


async def _audited(session: AsyncSession, *, org_id: int, template_id: int) -> dict[str, object]:
    template = await templates.get_template(session, org_id=org_id, template_id=template_id)
    return view(TemplateOut.model_validate(template))


@router.get("/templates")
async def template_list(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    found = await templates.list_templates(session, org_id=viewer.org_id, after_id=None, limit=500)
    return render(request, "templates/list.html", viewer, templates=found)


@router.get("/templates/new")
async def new_form(request: Request, viewer: ManageViewer) -> Response:
    return render(request, "templates/new.html", viewer, form={}, errors=[])


@router.post("/templates")
async def create(
    request: Request, viewer: ManageViewer, session: WriteSessionDep, renderer: RendererDep
) -> Response:
    form = await request.form()
    data: dict[str, Any] = {"name": (_text(form, "name") or "").strip(),
                            "channel": _text(form, "channel") or ""}  # fmt: skip
    data |= {part: _text(form, part) for part in PARTS}
    try:
        body = validated(TemplateCreate, data)
        created = TemplateOut.model_validate(
            await templates.create_template(session, org_id=viewer.org_id, renderer=renderer,
                                            by=viewer.who, **body.model_dump())
        )  # fmt: skip
    except InvalidInput as exc:
        return render(request, "templates/new.html", viewer, status_code=422, form=form,
                      errors=exc.errors)  # fmt: skip
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.TEMPLATE_CREATE,
                       target_id=created.id, changes=diff(None, view(created)))  # fmt: skip
    return redirect(f"/templates/{created.id}", viewer, flash=f"Template {created.name!r} created")


async def _editor(
    request: Request,
    viewer: Viewer,
    session: AsyncSession,
    template_id: int,
    *,
    status: int = 200,
    form: FormData | None = None,
    errors: list[FieldError] | None = None,
) -> Response:
    template = await templates.get_template(session, org_id=viewer.org_id, template_id=template_id)
    values = {"name": template.name, **{part: getattr(template, part) or "" for part in PARTS}}
    if form is not None:
        values |= {name: form.get(name) or "" for name in ("name", *PARTS)}
    return render(request, "templates/edit.html", viewer, status_code=status, item=template,
                  values=values, errors=errors or [])  # fmt: skip


@router.get("/templates/{template_id}")
async def editor(
    request: Request, template_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    return await _editor(request, viewer, session, template_id)


@router.post("/templates/{template_id}")
async def save(
    request: Request,
    template_id: int,
    viewer: ManageViewer,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> Response:
    form = await request.form()
    before = await _audited(session, org_id=viewer.org_id, template_id=template_id)
    data: dict[str, Any] = {"name": (_text(form, "name") or "").strip()}
    data |= {part: _text(form, part) for part in PARTS}
    try:
        body = validated(TemplateUpdate, data)
        saved = TemplateOut.model_validate(
            await templates.update_template(
                session, org_id=viewer.org_id, template_id=template_id, renderer=renderer,
                changes=changes_of(body, TemplateChanges), by=viewer.who)
        )  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)  # nothing half-changed is kept
        return await _editor(request, viewer, session, template_id, status=422, form=form,
                             errors=exc.errors)  # fmt: skip
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.TEMPLATE_UPDATE,
                       target_id=template_id, changes=diff(before, view(saved)))  # fmt: skip
    return redirect(f"/templates/{template_id}", viewer, flash=f"Saved as version {saved.version}")


@router.post("/templates/{template_id}/preview")
async def live_preview(
    request: Request,
    template_id: int,
    viewer: ReadViewer,
    session: SessionDep,
    renderer: RendererDep,
) -> Response:
    form = await request.form()
    template = await templates.get_template(session, org_id=viewer.org_id, template_id=template_id)
    address = (_text(form, "preview_for") or "").strip()
    shown, errors, contact_id = None, [], None
    if address:
        found = await contacts.list_contacts(
            session, org_id=viewer.org_id, after_id=None, limit=1,
            phone=address if address.startswith("+") else None,
            email=None if address.startswith("+") else address,
        )  # fmt: skip
        if found:
            contact_id = found[0].id
        else:
            errors.append(FieldError("preview_for", "no contact has this address"))
    if not errors:
        try:
            shown = await templates.preview_content(
                session, org_id=viewer.org_id, channel=template.channel,
                sources={part: _text(form, part) for part in PARTS}, renderer=renderer,
                contact_id=contact_id, variables={},
            )  # fmt: skip
        except InvalidInput as exc:
            errors = exc.errors
    return fragment(request, "templates/_preview.html", viewer, shown=shown, errors=errors,
                    channel=template.channel)  # fmt: skip


@router.get("/templates/{template_id}/versions")
async def versions(
    request: Request, template_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    template = await templates.get_template(session, org_id=viewer.org_id, template_id=template_id)
    found = await templates.list_versions(
        session, org_id=viewer.org_id, template_id=template_id, after_id=None, limit=1000
    )
    return render(request, "templates/versions.html", viewer, item=template,
                  versions=list(reversed(found)))  # fmt: skip


@router.post("/templates/{template_id}/versions/{number}/restore")
async def restore(
    template_id: int,
    number: int,
    viewer: ManageViewer,
    session: WriteSessionDep,
    renderer: RendererDep,
) -> Response:
    before = await _audited(session, org_id=viewer.org_id, template_id=template_id)
    restored = TemplateOut.model_validate(
        await templates.restore_version(session, org_id=viewer.org_id, template_id=template_id,
                                        number=number, renderer=renderer, by=viewer.who)
    )  # fmt: skip
    changes = diff(before, view(restored)) | {"restored_version": {"to": number}}
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.TEMPLATE_RESTORE,
                       target_id=template_id, changes=changes)  # fmt: skip
    return redirect(f"/templates/{template_id}", viewer,
                    flash=f"Version {number} restored as version {restored.version}")  # fmt: skip
