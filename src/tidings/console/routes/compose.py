"""Compose: a campaign, an audience (lists, segments or all contacts) with its live
count, now or at a time; a test send to a few addresses first. The broadcast is made by
`broadcasts.service.create_broadcast` and the test by `messages.service.send_single`,
exactly as `POST …/broadcasts` and `POST …/messages` make them.

A campaign is what a broadcast sends (its template and sender): a template alone is
sent through a campaign made for it on the campaigns page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Form, Query, Request, Response
from pydantic import ValidationError

from tidings.api.deps import RendererDep, SessionDep, WriteSessionDep
from tidings.api.fields import Id, UtcMoment
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns.service import get_campaign, list_campaigns
from tidings.console.deps import SendViewer
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.errors import FieldError, InvalidInput
from tidings.lists.service import list_lists
from tidings.messages import service as messages
from tidings.messages.schemas import SingleSend
from tidings.outbox.audience import count_audience
from tidings.segments.service import list_segments

router = page_router()
CHOICES = 200  # campaigns, lists and segments offered (the first ones, by id)
MAX_TEST_ADDRESSES = 10

Ids = Annotated[list[Id], Form(max_length=100)]


def _invalid(exc: ValidationError, whole: str) -> InvalidInput:
    """The form's fields named as the model names them; `whole` for a rule over several."""
    errors = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"])
        errors.append(FieldError(where or whole, err["msg"].removeprefix("Value error, ")))
    return InvalidInput(errors)


@router.get("/compose")
async def compose(
    request: Request,
    viewer: SendViewer,
    session: SessionDep,
    campaign_id: Annotated[Id | None, Query()] = None,
) -> Response:
    """The form; `campaign_id` preselects a campaign (after a test send, the one tested)."""
    org_id = viewer.org_id
    return render(
        request,
        "compose/form.html",
        viewer,
        campaigns=await list_campaigns(session, org_id=org_id, after_id=None, limit=CHOICES),
        lists=await list_lists(session, org_id=org_id, after_id=None, limit=CHOICES),
        segments=await list_segments(session, org_id=org_id, after_id=None, limit=CHOICES),
        chosen=campaign_id,
    )


@router.get("/compose/count")
async def audience_count(
    request: Request,
    viewer: SendViewer,
    session: SessionDep,
    list_ids: Annotated[list[Id], Query(max_length=100)] = [],  # noqa: B006 — FastAPI copies it
    segment_ids: Annotated[list[Id], Query(max_length=10)] = [],  # noqa: B006
    send_to_all: Annotated[bool, Query()] = False,
) -> Response:
    audience = {"list_ids": list_ids, "segment_ids": segment_ids, "send_to_all": send_to_all}
    chosen = bool(list_ids or segment_ids or send_to_all)
    count = (
        await count_audience(session, org_id=viewer.org_id, audience=audience) if chosen else None
    )
    return fragment(request, "compose/_count.html", viewer, count=count)


@router.post("/compose/test")
async def test_send(
    viewer: SendViewer,
    session: WriteSessionDep,
    renderer: RendererDep,
    campaign_id: Annotated[Id, Form()],
    test_addresses: Annotated[str, Form(max_length=4_000)],
) -> Response:
    """One message per address, through the campaign as the broadcast would send it."""
    addresses = [a.strip() for a in test_addresses.replace(",", "\n").splitlines() if a.strip()]
    if not addresses or len(addresses) > MAX_TEST_ADDRESSES:
        reason = f"one to {MAX_TEST_ADDRESSES} addresses, one a line"
        raise InvalidInput.field("test_addresses", reason)
    campaign = await get_campaign(session, org_id=viewer.org_id, campaign_id=campaign_id)
    field = "email" if campaign.channel == "email" else "phone"
    sent = []
    for address in addresses:
        try:
            body = SingleSend(campaign_id=campaign.id, to={field: address})
        except ValidationError as exc:
            raise _invalid(exc, "test_addresses") from None
        try:
            message = await messages.send_single(
                session, org_id=viewer.org_id, body=body, renderer=renderer
            )
        except InvalidInput as exc:  # to.email: which address it was
            raise InvalidInput(
                [FieldError("test_addresses", f"{address}: {e.reason}") for e in exc.errors]
            ) from None
        sent.append(message.id)
    plural = "es" if len(sent) > 1 else ""
    flash = f"Test sent to {len(sent)} address{plural}: messages {', '.join(map(str, sent))}."
    return redirect(f"/compose?campaign_id={campaign.id}", viewer, flash=flash)


@router.post("/compose")
async def create(
    viewer: SendViewer,
    session: WriteSessionDep,
    name: Annotated[str, Form(max_length=255)],
    campaign_id: Annotated[Id, Form()],
    list_ids: Ids = [],  # noqa: B006 — FastAPI copies it
    segment_ids: Ids = [],  # noqa: B006
    send_to_all: Annotated[bool, Form()] = False,
    when: Annotated[str, Form(pattern="^(now|later)$")] = "now",
    scheduled_at: Annotated[UtcMoment | None, Form()] = None,
) -> Response:
    if when == "later" and scheduled_at is None:
        raise InvalidInput.field("scheduled_at", "a date and time (UTC) to send at")
    at: datetime | None = scheduled_at if when == "later" else None
    try:
        body = BroadcastCreate(
            name=name,
            campaign_id=campaign_id,
            list_ids=list_ids,
            segment_ids=segment_ids,
            send_to_all=send_to_all,
            scheduled_at=at,
        )
    except ValidationError as exc:
        raise _invalid(exc, "audience") from None
    created = await broadcasts.create_broadcast(session, org_id=viewer.org_id, body=body)
    b = created.broadcast
    flash = f"Broadcast {b.id} scheduled" + (
        f" for {at:%Y-%m-%d %H:%M} UTC." if at else ": sending now."
    )
    return redirect(f"/broadcasts/{b.id}", viewer, flash=flash)
