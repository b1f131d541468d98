"""Org settings: the org's name, phone region, the countries SMS may go to, its time
zone, quiet hours per channel and the days it may send on.

    GET  /settings      the org (every role reads it)
    POST /settings      change it (admin, owner), checked with the API's `OrgUpdate`

An empty phone region clears it; an empty country list means every country (the API's
`null`), and "none" means no country at all (`[]`). An empty time zone clears it. A
channel's quiet hours with both times empty are none (the channel is left out); one
time alone is refused by the API's model beside it. Every day ticked, or none (a form
without the boxes), is the API's `null`: any day.
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
from tidings.orgs.schemas import ChannelName, OrgChanges, OrgOut, OrgUpdate

router = page_router()

CHANNELS: tuple[ChannelName, ...] = ("email", "sms")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _values(org: OrgOut) -> dict[str, Any]:
    quiet = org.quiet_hours or {}
    values: dict[str, Any] = {
        "name": org.name,
        "phone_region": org.phone_region or "",
        "sms_countries": "" if org.sms_countries is None else " ".join(org.sms_countries) or "none",
        "timezone": org.timezone or "",
        "sending_days": list(org.sending_days or WEEKDAYS),
    }
    for channel in CHANNELS:
        window = quiet.get(channel)
        values[f"{channel}_quiet_start"] = window.start if window else ""
        values[f"{channel}_quiet_end"] = window.end if window else ""
    return values


def _quiet_hours(times: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]] | None:
    chosen = {
        channel: {"start": start.strip(), "end": end.strip()}
        for channel, (start, end) in times.items()
        if start.strip() or end.strip()
    }
    return chosen or None


def _sending_days(ticked: list[str]) -> list[str] | None:
    return None if not ticked or set(ticked) == set(WEEKDAYS) else ticked


async def _page(request: Request, viewer: Viewer, session: AsyncSession, *, status: int = 200,
                errors: list[FieldError] | None = None,
                form: dict[str, Any] | None = None) -> Response:  # fmt: skip
    org = OrgOut.model_validate(await orgs.get_org(session, org_id=viewer.org_id))
    values = form or _values(org)
    return render(request, "settings/page.html", viewer, status_code=status, org=org,
                  values=values, errors=errors or [], channels=CHANNELS,
                  weekdays=WEEKDAYS)  # fmt: skip


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
    timezone: Annotated[str, Form(max_length=100)] = "",
    email_quiet_start: Annotated[str, Form(max_length=10)] = "",
    email_quiet_end: Annotated[str, Form(max_length=10)] = "",
    sms_quiet_start: Annotated[str, Form(max_length=10)] = "",
    sms_quiet_end: Annotated[str, Form(max_length=10)] = "",
    sending_days: Annotated[list[str] | None, Form(max_length=7)] = None,
) -> Response:
    times = {"email": (email_quiet_start, email_quiet_end),
             "sms": (sms_quiet_start, sms_quiet_end)}  # fmt: skip
    days = sending_days or []
    data: dict[str, Any] = {"name": name.strip(),
                            "phone_region": phone_region.strip().upper() or None,
                            "sms_countries": _countries(sms_countries),
                            "timezone": timezone.strip() or None,
                            "quiet_hours": _quiet_hours(times),
                            "sending_days": _sending_days(days)}  # fmt: skip
    try:
        body = validated(OrgUpdate, data)
        before = view(OrgOut.model_validate(await orgs.get_org(session, org_id=viewer.org_id)))
        org = OrgOut.model_validate(
            await orgs.update_org(session, org_id=viewer.org_id,
                                  changes=changes_of(body, OrgChanges))
        )  # fmt: skip
    except InvalidInput as exc:
        await roll_back_now(request)
        form = {"name": name, "phone_region": phone_region, "sms_countries": sms_countries,
                "timezone": timezone, "sending_days": days,
                "email_quiet_start": email_quiet_start, "email_quiet_end": email_quiet_end,
                "sms_quiet_start": sms_quiet_start, "sms_quiet_end": sms_quiet_end}  # fmt: skip
        return await _page(request, viewer, session, status=422, errors=exc.errors, form=form)
    await audit.record(session, org_id=viewer.org_id, by=viewer, action=Action.ORG_UPDATE,
                       target_id=viewer.org_id, changes=diff(before, view(org)))  # fmt: skip
    return redirect("/settings", viewer, flash="Settings saved")
