"""Org settings: the org's name, phone region and the countries SMS may go to.

    GET  /settings      the org (every role reads it)
    POST /settings      change it (admin, owner), checked with the API's `OrgUpdate`

An empty phone region clears it; an empty country list means every country (the API's
`null`), and "none" means no country at all (`[]`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import FieldError, InvalidInput
from tidings.orgs import service as orgs
from tidings.orgs.schemas import OrgChanges, OrgOut, OrgUpdate

router = page_router()


async def _page(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                errors: list[FieldError] | None = None,
                form: dict[str, str] | None = None) -> Response:  # fmt: skip
    org = OrgOut.model_validate(await orgs.get_org(session, org_id=viewer.org_id))
    values = form or {
        "name": org.name,
        "phone_region": org.phone_region or "",
        "sms_countries": "" if org.sms_countries is None else " ".join(org.sms_countries) or "none",
    }
    return render(request, "settings/page.html", viewer, status_code=status, org=org,
                  values=values, errors=errors or [])  # fmt: skip


def _countries(text: str) -> list[str] | None:
    words = text.replace(",", " ").split()
    if not words:
        return None
    if [w.lower() for w in words] == ["none"]:
        return []
    return words


@router.get("/settings")
async def settings_page(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    return await _page(request, viewer, session)


@router.post("/settings")
async def save(
    request: Request,
    viewer: ManageViewer,
    session: WriteSessionDep,
    name: Annotated[str, Form(max_length=1000)] = "",
    phone_region: Annotated[str, Form(max_length=10)] = "",
    sms_countries: Annotated[str, Form(max_length=3000)] = "",
) -> Response:
    data: dict[str, Any] = {"name": name.strip(),
                            "phone_region": phone_region.strip().upper() or None,
                            "sms_countries": _countries(sms_countries)}  # fmt: skip
    try:
        body = validated(OrgUpdate, data)
        before = view(OrgOut.model_validate(await orgs.get_org(session, org_id=viewer.org_id)))
        org = OrgOut.model_validate(
            await orgs.update_org(session, org_id=viewer.org_id,
                                  changes=changes_of(body, OrgChanges))
        )  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)
        form = {"name": name, "phone_region": phone_region, "sms_countries": sms_countries}
        return await _page(request, viewer, session, status=422, errors=exc.errors, form=form)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.ORG_UPDATE,
                       target_id=viewer.org_id, changes=diff(before, view(org)))  # fmt: skip
    return redirect("/settings", viewer, flash="Settings saved")
