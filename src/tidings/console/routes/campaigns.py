"""Campaigns: the list, a campaign's page, and a new campaign.

    GET  /campaigns            the org's campaigns
    GET  /campaigns/new        the form                   (admin, owner)
    POST /campaigns            create, checked with the API's `CampaignCreate`
    GET  /campaigns/{id}       the campaign: its template, sender, connections in failover
                               order, fallback campaign, quiet hours, tracking
    GET  /campaigns/{id}/edit  the form, filled in             (admin, owner)
    POST /campaigns/{id}/edit  change it, as `PATCH …/campaigns/{id}`
    GET  /campaigns/{id}/delete   the confirmation step        (admin, owner)
    POST /campaigns/{id}/delete   delete it, as `DELETE …/campaigns/{id}` (409 while in use)

The form's connections are up to five selects, read in order (empty ones left out) as
the API's `connection_ids`; its quiet hours two times (both empty: the org's). The edit
form sets every field it shows (an empty one is cleared, as `null` in the API's PATCH)
and leaves the fields it does not show (external id, project, survey, invite URL,
language) as they are.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.api.fields import Id
from tidings.api.patch import changes_of
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import (
    MAX_CONNECTIONS,
    CampaignChanges,
    CampaignCreate,
    CampaignOut,
    CampaignUpdate,
    Purpose,
)
from tidings.connections import service as connections
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import Conflict, FieldError, InvalidInput
from tidings.lists import service as lists
from tidings.retirement import service as retirement
from tidings.templates import service as templates

router = page_router()
TEXT_FIELDS = ("name", "channel", "template_id", "purpose", "from_name", "from_email",
               "reply_to", "sms_sender", "connection_id", "list_id",
               "fallback_campaign_id")  # fmt: skip


def _data(form: FormData) -> dict[str, Any]:
    """The form as the API's body: an empty field is left out (the API's default)."""
    data: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            data[name] = value.strip()
    for flag in ("track_opens", "track_clicks"):
        data[flag] = form.get(flag) == "on"
    chosen = [v.strip() for v in form.getlist("connection_ids") if isinstance(v, str) and v.strip()]
    if chosen:
        data["connection_ids"] = chosen
    start, end = (str(form.get(f"quiet_{edge}") or "").strip() for edge in ("start", "end"))
    if start or end:
        data["quiet_hours"] = {"start": start, "end": end}
    return data


async def _names(session: AsyncSession, viewer: Viewer) -> tuple[dict[int, str], dict[int, str]]:
    """The org's connections and campaigns by id, to name them on a page."""
    found = await connections.list_connections(session, org_id=viewer.org_id)
    named = await campaigns.list_campaigns(session, org_id=viewer.org_id, after_id=None, limit=500)
    return {c.id: c.name for c in found}, {c.id: c.name for c in named}


EDITED = ("name", "template_id", "purpose", "from_name", "from_email", "reply_to", "sms_sender",
          "fallback_campaign_id", "list_id")  # fmt: skip


def _changes(form: FormData) -> dict[str, Any]:
    """The edit form as the API's PATCH body: every field it shows is set (empty: null)."""
    data = _data(form)
    data.pop("channel", None)
    data.pop("connection_id", None)
    changes: dict[str, Any] = {name: data.get(name) for name in EDITED}
    changes |= {"track_opens": data["track_opens"], "track_clicks": data["track_clicks"]}
    changes["connection_ids"] = data.get("connection_ids")
    changes["quiet_hours"] = data.get("quiet_hours")
    return changes


def _filled(campaign: CampaignOut) -> dict[str, str]:
    """A campaign as its edit form's fields."""
    form = {name: "" if getattr(campaign, name) is None else str(getattr(campaign, name))
            for name in EDITED}  # fmt: skip
    form |= {flag: "on" if getattr(campaign, flag) else "" for flag in ("track_opens",
                                                                      "track_clicks")}  # fmt: skip
    hours = campaign.quiet_hours
    form |= {"quiet_start": hours.start if hours else "", "quiet_end": hours.end if hours else ""}
    return form


def _connections_of(campaign: CampaignOut) -> list[str]:
    ids = campaign.connection_ids or ([campaign.connection_id] if campaign.connection_id else [])
    return [str(c) for c in ids]


async def _form(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                form: FormData | dict[str, str] | None = None,
                errors: list[FieldError] | None = None, editing: CampaignOut | None = None,
                chosen: list[str] | None = None) -> Response:  # fmt: skip
    if chosen is None:
        chosen = (
            [str(v) for v in form.getlist("connection_ids")] if isinstance(form, FormData) else []
        )
    return render(
        request, "campaigns/new.html", viewer, status_code=status, form=form or {},
        editing=editing,
        errors=errors or [], purposes=list(Purpose),
        templates=await templates.list_templates(session, org_id=viewer.org_id, after_id=None,
                                                 limit=500),
        connections=await connections.list_connections(session, org_id=viewer.org_id),
        lists=await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=500),
        campaigns=await campaigns.list_campaigns(session, org_id=viewer.org_id, after_id=None,
                                                 limit=500),
        chosen=chosen, slots=range(MAX_CONNECTIONS),
    )  # fmt: skip


@router.get("/campaigns")
async def campaign_list(request: Request, viewer: ReadViewer, session: SessionDep) -> Response:
    found = await campaigns.list_campaigns(session, org_id=viewer.org_id, after_id=None, limit=500)
    connection_names, _ = await _names(session, viewer)
    return render(request, "campaigns/list.html", viewer, campaigns=found,
                  connection_names=connection_names)  # fmt: skip


@router.get("/campaigns/new")
async def new_form(request: Request, viewer: ManageViewer, session: SessionDep) -> Response:
    return await _form(request, viewer, session)


@router.post("/campaigns")
async def create(request: Request, viewer: ManageViewer, session: WriteSessionDep) -> Response:
    form = await request.form()
    try:
        body = validated(CampaignCreate, _data(form))
        created = CampaignOut.model_validate(
            await campaigns.create_campaign(session, org_id=viewer.org_id, body=body)
        )
    except InvalidInput as exc:
        await roll_back_now(request)
        return await _form(request, viewer, session, status=422, form=form, errors=exc.errors)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.CAMPAIGN_CREATE,
                       target_id=created.id, changes=diff(None, view(created)))  # fmt: skip
    return redirect(f"/campaigns/{created.id}", viewer, flash=f"Campaign {created.name!r} created")


@router.get("/campaigns/{campaign_id}")
async def campaign_page(
    request: Request, campaign_id: int, viewer: ReadViewer, session: SessionDep
) -> Response:
    found = CampaignOut.model_validate(
        await campaigns.get_campaign(session, org_id=viewer.org_id, campaign_id=campaign_id)
    )
    connection_names, campaign_names = await _names(session, viewer)
    return render(request, "campaigns/campaign.html", viewer, campaign=found,
                  connection_names=connection_names, campaign_names=campaign_names)  # fmt: skip


async def _campaign(session: AsyncSession, viewer: Viewer, campaign_id: int) -> CampaignOut:
    found = await campaigns.get_campaign(session, org_id=viewer.org_id, campaign_id=campaign_id)
    return CampaignOut.model_validate(found)


@router.get("/campaigns/{campaign_id}/edit")
async def edit_form(
    request: Request, campaign_id: Id, viewer: ManageViewer, session: SessionDep
) -> Response:
    found = await _campaign(session, viewer, campaign_id)
    return await _form(request, viewer, session, form=_filled(found), editing=found,
                       chosen=_connections_of(found))  # fmt: skip


@router.post("/campaigns/{campaign_id}/edit")
async def edit(
    request: Request, campaign_id: Id, viewer: ManageViewer, session: WriteSessionDep
) -> Response:
    form = await request.form()
    before = await _campaign(session, viewer, campaign_id)
    try:
        body = validated(CampaignUpdate, _changes(form))
        after = CampaignOut.model_validate(
            await campaigns.update_campaign(session, org_id=viewer.org_id, campaign_id=campaign_id,
                                            changes=changes_of(body, CampaignChanges))
        )  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)
        return await _form(request, viewer, session, status=422, form=form, errors=exc.errors,
                           editing=before)  # fmt: skip
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.CAMPAIGN_UPDATE,
                       target_id=campaign_id, changes=diff(view(before), view(after)))  # fmt: skip
    return redirect(f"/campaigns/{campaign_id}", viewer, flash=f"Campaign {after.name!r} saved")


DELETING = (
    "It is hidden and kept as the history of the sends that used it; refused while "
    "a send in flight or another campaign (as its fallback) uses it."
)


def _confirm(request: Request, viewer: Viewer, found: CampaignOut, *, status: int = 200,
             refused: str | None = None) -> Response:  # fmt: skip
    return render(request, "confirm.html", viewer, status_code=status,
                  what=f"campaign {found.name!r}", action=f"/campaigns/{found.id}/delete",
                  back=f"/campaigns/{found.id}", refused=refused,
                  note=DELETING)  # fmt: skip


@router.get("/campaigns/{campaign_id}/delete")
async def delete_form(
    request: Request, campaign_id: Id, viewer: ManageViewer, session: SessionDep
) -> Response:
    return _confirm(request, viewer, await _campaign(session, viewer, campaign_id))


@router.post("/campaigns/{campaign_id}/delete")
async def delete(
    request: Request, campaign_id: Id, viewer: ManageViewer, session: WriteSessionDep
) -> Response:
    before = await _campaign(session, viewer, campaign_id)
    try:
        await retirement.delete_campaign(session, org_id=viewer.org_id, campaign_id=campaign_id)
    except Conflict as exc:
        await roll_back_now(request)
        return _confirm(request, viewer, before, status=409, refused=exc.detail)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.CAMPAIGN_DELETE,
                       target_id=campaign_id, changes=diff(view(before), None))  # fmt: skip
    return redirect("/campaigns", viewer, flash=f"Campaign {before.name!r} deleted")
