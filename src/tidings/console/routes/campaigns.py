"""Campaigns: the list, a campaign's page, and a new campaign.

    GET  /campaigns            the org's campaigns
    GET  /campaigns/new        the form                   (admin, owner)
    POST /campaigns            create, checked with the API's `CampaignCreate`
    GET  /campaigns/{id}       the campaign: its template, sender, connections in failover
                               order, fallback campaign, quiet hours, tracking

The form's connections are up to five selects, read in order (empty ones left out) as
the API's `connection_ids`; its quiet hours two times (both empty: the org's). Changing
or deleting a campaign stays with the API and the CLI for now.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from tidings.api.deps import SessionDep, WriteSessionDep, roll_back_now
from tidings.audit import service as audit
from tidings.audit.actions import Action
from tidings.audit.diff import diff, view
from tidings.campaigns import service as campaigns
from tidings.campaigns.schemas import MAX_CONNECTIONS, CampaignCreate, CampaignOut, Purpose
from tidings.connections import service as connections
from tidings.console.deps import ManageViewer, ReadViewer, Viewer
from tidings.console.forms import validated
from tidings.console.pages import redirect, render
from tidings.console.routing import page_router
from tidings.errors import FieldError, InvalidInput
from tidings.lists import service as lists
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


async def _form(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                form: FormData | None = None,
                errors: list[FieldError] | None = None) -> Response:  # fmt: skip
    return render(
        request, "campaigns/new.html", viewer, status_code=status, form=form or {},
        errors=errors or [], purposes=list(Purpose),
        templates=await templates.list_templates(session, org_id=viewer.org_id, after_id=None,
                                                 limit=500),
        connections=await connections.list_connections(session, org_id=viewer.org_id),
        lists=await lists.list_lists(session, org_id=viewer.org_id, after_id=None, limit=500),
        campaigns=await campaigns.list_campaigns(session, org_id=viewer.org_id, after_id=None,
                                                 limit=500),
        chosen=form.getlist("connection_ids") if form else [], slots=range(MAX_CONNECTIONS),
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
