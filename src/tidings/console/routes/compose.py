"""Compose: a campaign, an audience (lists, segments or all contacts) with its live
count, now, at a time, or at each recipient's local time; its estimate, live; a test
send to a few addresses first. The broadcast is made by
`broadcasts.service.create_broadcast` and the test by `messages.service.send_single`,
exactly as `POST …/broadcasts` and `POST …/messages` make them.

The estimate (`POST /compose/estimate`, htmx, on every change of the form) is the API's
`dry_run`: `broadcasts.preview.dry_run` on the broadcast the form describes, which
leaves nothing behind. A broadcast the balance cannot cover is refused by the service
(402); the form comes back with the dry run's figures beside the refusal.

A template may be chosen instead of a campaign: the broadcast then goes out under the
template's hidden campaign (`campaigns.service.template_campaign`, the path a single send
of a template takes), with the sender the form gives (an email needs a From address:
the org has no default sender), through the org's default connection for the channel;
without one the form says so beside the template. The estimate makes that campaign in a
savepoint it rolls back, so nothing is left behind; the test send is `send_single` of
the template, which finds the same hidden campaign.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.api.deps import DatabaseDep, RendererDep, SessionDep, WriteSessionDep
from tidings.api.fields import Id, UtcMoment
from tidings.broadcasts import preview
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.routes import estimate_out
from tidings.broadcasts.schemas import BroadcastCreate, BroadcastEstimate
from tidings.campaigns.models import Campaign
from tidings.campaigns.schemas import Purpose
from tidings.campaigns.service import get_campaign, list_campaigns, template_campaign
from tidings.connections.service import default_connections, list_connections
from tidings.console.deps import SendViewer, Viewer
from tidings.console.pages import fragment, redirect, render
from tidings.console.routing import page_router
from tidings.errors import FieldError, InsufficientCredit, InvalidInput
from tidings.lists.service import list_lists
from tidings.messages import service as messages
from tidings.messages.schemas import SingleSend
from tidings.outbox.audience import count_audience
from tidings.segments.service import list_segments
from tidings.templates.service import list_templates

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
    template_id: Annotated[Id | None, Query()] = None,
) -> Response:
    """The form; `campaign_id` or `template_id` preselects one (after a test send, the
    one tested)."""
    return await _form(request, viewer, session, ComposeForm(campaign_id=campaign_id,
                                                             template_id=template_id))  # fmt: skip


async def _form(request: Request, viewer: Viewer, session: AsyncSession, form: ComposeForm, *,
                status: int = 200, estimate: BroadcastEstimate | None = None,
                refused: str | None = None,
                errors: list[FieldError] | None = None) -> Response:  # fmt: skip
    org_id = viewer.org_id
    defaults = await default_connections(session, org_id=org_id)
    names = {c.id: c.name for c in await list_connections(session, org_id=org_id)}
    return render(
        request, "compose/form.html", viewer, status_code=status,
        campaigns=await list_campaigns(session, org_id=org_id, after_id=None, limit=CHOICES),
        templates=await list_templates(session, org_id=org_id, after_id=None, limit=CHOICES),
        defaults={channel: names.get(ident, ident) for channel, ident in defaults.items()},
        purposes=list(Purpose),
        lists=await list_lists(session, org_id=org_id, after_id=None, limit=CHOICES),
        segments=await list_segments(session, org_id=org_id, after_id=None, limit=CHOICES),
        chosen=form.campaign_id, form=form, estimate=estimate, refused=refused,
        errors=errors or [],
    )  # fmt: skip


@dataclass
class ComposeForm:
    """What the compose form holds; `body()` is the API's `BroadcastCreate` of it."""

    name: str = ""
    campaign_id: int | None = None
    template_id: int | None = None  # instead of a campaign: sent with the sender below
    purpose: str = Purpose.MARKETING.value
    from_name: str = ""
    from_email: str = ""
    sms_sender: str = ""
    list_ids: list[int] | None = None
    segment_ids: list[int] | None = None
    send_to_all: bool = False
    when: str = "now"  # now | later | local
    scheduled_at: datetime | None = None
    local_time: str = ""
    local_date: str = ""

    def chosen(self) -> bool:
        what = self.campaign_id or self.template_id
        return bool(what and (self.list_ids or self.segment_ids or self.send_to_all))

    async def campaign(self, session: AsyncSession, *, org_id: int) -> Campaign | None:
        """The template's hidden campaign when a template is chosen (None: a campaign is,
        or nothing); InvalidInput when both are, or as `template_campaign`."""
        if self.template_id is None:
            return None
        if self.campaign_id is not None:
            raise InvalidInput.field("template_id", "choose a campaign or a template, not both")
        return await template_campaign(
            session, org_id=org_id, template_id=self.template_id, purpose=self.purpose,
            from_name=self.from_name.strip() or None, from_email=self.from_email.strip() or None,
            sms_sender=self.sms_sender.strip() or None,
        )  # fmt: skip

    def body(self, *, name: str | None = None, campaign: Campaign | None = None) -> BroadcastCreate:
        if self.when == "later" and self.scheduled_at is None:
            raise InvalidInput.field("scheduled_at", "a date and time (UTC) to send at")
        if self.when == "local" and not self.local_time.strip():
            raise InvalidInput.field("local_time", "a local time (HH:MM) to send at")
        data: dict[str, Any] = {
            "name": self.name if name is None else name,
            "campaign_id": campaign.id if campaign is not None else self.campaign_id,
            "list_ids": self.list_ids or [],
            "segment_ids": self.segment_ids or [],
            "send_to_all": self.send_to_all,
            "scheduled_at": self.scheduled_at if self.when == "later" else None,
        }
        if self.when == "local":
            data["local_time"] = self.local_time.strip()
            data["local_date"] = self.local_date.strip() or None
        try:
            return BroadcastCreate.model_validate(data)
        except ValidationError as exc:
            raise _invalid(exc, "audience") from None


def compose_form(
    name: Annotated[str, Form(max_length=255)] = "",
    campaign_id: Annotated[Id | None, Form()] = None,
    template_id: Annotated[Id | None, Form()] = None,
    purpose: Annotated[Purpose, Form()] = Purpose.MARKETING,
    from_name: Annotated[str, Form(max_length=255)] = "",
    from_email: Annotated[str, Form(max_length=320)] = "",
    sms_sender: Annotated[str, Form(max_length=20)] = "",
    list_ids: Ids = [],  # noqa: B006 — FastAPI copies it
    segment_ids: Ids = [],  # noqa: B006
    send_to_all: Annotated[bool, Form()] = False,
    when: Annotated[str, Form(pattern="^(now|later|local)$")] = "now",
    scheduled_at: Annotated[UtcMoment | None, Form()] = None,
    local_time: Annotated[str, Form(max_length=10)] = "",
    local_date: Annotated[str, Form(max_length=20)] = "",
) -> ComposeForm:
    return ComposeForm(name=name, campaign_id=campaign_id, template_id=template_id,
                       purpose=purpose.value, from_name=from_name, from_email=from_email,
                       sms_sender=sms_sender, list_ids=list_ids,
                       segment_ids=segment_ids, send_to_all=send_to_all, when=when,
                       scheduled_at=scheduled_at, local_time=local_time,
                       local_date=local_date)  # fmt: skip


ComposeFormDep = Annotated[ComposeForm, Depends(compose_form)]


@router.post("/compose/estimate")
async def estimate(
    request: Request, viewer: SendViewer, session: WriteSessionDep, form: ComposeFormDep
) -> Response:
    """The dry run of what the form describes (nothing is kept), or what it still lacks."""
    figures, errors = None, []
    if form.chosen():
        savepoint = await session.begin_nested()  # a template's hidden campaign: not kept
        try:
            campaign = await form.campaign(session, org_id=viewer.org_id)
            body = form.body(name=form.name.strip() or "estimate", campaign=campaign)
            figures = estimate_out(await preview.dry_run(session, org_id=viewer.org_id,
                                                         body=body, campaign=campaign))  # fmt: skip
        except InvalidInput as exc:
            errors = exc.errors
        finally:
            await savepoint.rollback()
    return fragment(request, "compose/_estimate.html", viewer, estimate=figures, errors=errors,
                    refused=None)  # fmt: skip


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
    form: ComposeFormDep,
    test_addresses: Annotated[str, Form(max_length=4_000)],
) -> Response:
    """One message per address, through the campaign as the broadcast would send it (a
    template: as a single send of it, with the form's sender, as the broadcast would)."""
    addresses = [a.strip() for a in test_addresses.replace(",", "\n").splitlines() if a.strip()]
    if not addresses or len(addresses) > MAX_TEST_ADDRESSES:
        reason = f"one to {MAX_TEST_ADDRESSES} addresses, one a line"
        raise InvalidInput.field("test_addresses", reason)
    hidden = await form.campaign(session, org_id=viewer.org_id)
    if hidden is None and form.campaign_id is None:
        raise InvalidInput.field("campaign_id", "choose a campaign or a template")
    campaign = hidden or await get_campaign(
        session, org_id=viewer.org_id, campaign_id=form.campaign_id or 0
    )
    source: dict[str, Any] = {"campaign_id": campaign.id}
    if hidden is not None:  # the same hidden campaign, found again by send_single
        source = {"template_id": hidden.template_id, "purpose": hidden.purpose,
                  "from_name": hidden.from_name, "from_email": hidden.from_email,
                  "sms_sender": hidden.sms_sender}  # fmt: skip
    field = "email" if campaign.channel == "email" else "phone"
    sent = []
    for address in addresses:
        try:
            body = SingleSend.model_validate({**source, "to": {field: address}})
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
    chosen = f"template_id={hidden.template_id}" if hidden else f"campaign_id={campaign.id}"
    return redirect(f"/compose?{chosen}", viewer, flash=flash)


@router.post("/compose")
async def create(
    request: Request, viewer: SendViewer, db: DatabaseDep, form: ComposeFormDep
) -> Response:
    if not form.campaign_id and not form.template_id:
        raise InvalidInput.field("campaign_id", "choose a campaign or a template")
    try:
        async with db.transaction() as session:
            campaign = await form.campaign(session, org_id=viewer.org_id)
            body = form.body(campaign=campaign)
            created = await broadcasts.create_broadcast(session, org_id=viewer.org_id, body=body,
                                                        campaign=campaign)  # fmt: skip
    except InvalidInput as exc:
        async with db.transaction(write=False) as session:
            return await _form(request, viewer, session, form, status=422, errors=exc.errors)
    except InsufficientCredit as exc:
        async with db.transaction() as session:  # the same figures the service refused on
            campaign = await form.campaign(session, org_id=viewer.org_id)
            figures = estimate_out(await preview.dry_run(session, org_id=viewer.org_id,
                                                         body=body, campaign=campaign))  # fmt: skip
            return await _form(request, viewer, session, form, status=402, estimate=figures,
                               refused=str(exc))  # fmt: skip
    b = created.broadcast
    at = body.scheduled_at
    flash = f"Broadcast {b.id} " + (
        f"scheduled for {at:%Y-%m-%d %H:%M} UTC" if at else "created: sending now"
    )
    if body.local_time:
        on = f" on {body.local_date}" if body.local_date else ""
        flash += f", each message at {body.local_time}{on} in its recipient's time zone"
    return redirect(f"/broadcasts/{b.id}", viewer, flash=flash + ".")
