"""Seed 002, broadcasts, under `/compat/invent`.

POST /orgs/{org_id}/broadcasts
     {"name", "scheduled_at": datetime | null, "segment_ids": [str], "send_to_all": bool,
      "templates": [{"campaign_id": str}]  (our extra; or "campaign_id" at the top level)}
  → 200 the broadcast object (`Broadcast` below: every field of the seed, always present)
GET  /orgs/{org_id}/broadcasts/{id}                  → 200 the broadcast object
GET  /orgs/{org_id}/broadcasts?limit=&cursor=        → 200 {"data": [...], "next_cursor"}
PUT  /orgs/{org_id}/broadcasts/{id}/templates        → 200 the broadcast object (our extra)
     {"templates": [{"campaign_id": str}]} or {"campaign_id": str}
  → 400/401/403/404/409 {"error": {"code": str, "message": str}}

A seed "template" is a Tidings campaign, and a broadcast sends exactly one. Without one
the broadcast is a DRAFT; attaching one schedules it (`tidings.broadcasts.service`).
Ids are our integers, answered as strings; numeric strings are accepted wherever an id is.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tidings.api.deps import PrincipalDep, SessionDep, WriteSessionDep
from tidings.api.fields import Id as NativeId
from tidings.api.fields import UtcMoment, id_in
from tidings.api.pagination import CursorQuery, LimitQuery, Page, decode_cursor, paged
from tidings.api.principal import Principal
from tidings.broadcasts import details, service
from tidings.broadcasts.models import COUNTERS
from tidings.campaigns.models import Campaign
from tidings.compat.routing import Failure, dialect_router, error_answers
from tidings.errors import InvalidInput, NotFound
from tidings.idempotency.http import IDEMPOTENT
from tidings.keys.schemas import KeyKind, Scope

_CODES: Final = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    402: "INSUFFICIENT_CREDIT",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    422: "IDEMPOTENCY_KEY_REUSED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}


def error_shape(failure: Failure) -> Response:
    status = 400 if failure.kind in ("malformed", "invalid-input") else failure.status
    body = {"error": {"code": _CODES.get(status, "INTERNAL_ERROR"), "message": failure.detail}}
    return JSONResponse(body, status_code=status)


class ErrorDetail(BaseModel):
    code: str = Field(description="BAD_REQUEST, UNAUTHORIZED, FORBIDDEN, NOT_FOUND, …")
    message: str


class InventError(BaseModel):
    """Every error of this dialect, whatever its status."""

    error: ErrorDetail


NO_CREDIT: Final = (
    "INSUFFICIENT_CREDIT: the org's balance cannot cover what the broadcast would send "
    "(nothing is made or scheduled)"
)

router = dialect_router(
    error_shape,
    prefix="/compat/invent",
    tag="compat: broadcasts (seed 002)",
    error_model=InventError,
    errors={400: "Bad request: malformed JSON or an invalid field (named in `message`)"},
)


def _id(value: object) -> object:
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)  # out of range: refused by NativeId, naming the field
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError('an id: a number or a numeric string such as "12"')


Id = Annotated[NativeId, BeforeValidator(_id)]


class TemplateRef(BaseModel):
    campaign_id: Id


class _WithCampaign(BaseModel):
    templates: list[TemplateRef] | None = None
    campaign_id: Id | None = None

    def campaign(self) -> int | None:
        """The one campaign named, by `templates` or `campaign_id` (they must agree)."""
        if self.templates is not None and len(self.templates) > 1:
            raise InvalidInput.field(
                "templates",
                "one template per broadcast: a broadcast sends one Tidings campaign "
                "(for email and SMS, create two broadcasts)",
            )
        named = {t.campaign_id for t in self.templates or []}
        if self.campaign_id is not None:
            named.add(self.campaign_id)
        if len(named) > 1:
            raise InvalidInput.field("campaign_id", "names another campaign than templates[0]")
        return next(iter(named), None)


class BroadcastCreate(_WithCampaign):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Spring offer",
                    "scheduled_at": None,
                    "segment_ids": ["1"],
                    "send_to_all": False,
                    "templates": [{"campaign_id": "1"}],
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=255)
    scheduled_at: UtcMoment | None = None  # without an offset: UTC
    segment_ids: list[Id] | None = Field(default=None, max_length=10)
    send_to_all: bool | None = None


class TemplatesAttach(_WithCampaign):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"templates": [{"campaign_id": "1"}]}]}
    )


Status = Literal["DRAFT", "SCHEDULED", "SENDING", "SENT", "CANCELLED", "FAILED"]


class Segment(BaseModel):
    id: str
    name: str
    contacts_count: int
    created_at: datetime
    updated_at: datetime


class Template(BaseModel):
    """The broadcast's campaign, as the seed's per-channel template."""

    id: str
    broadcast_id: str
    connection_id: str | None
    integration_id: Literal["internal"]
    recipients_count: int
    config: dict[str, Any]
    error: str | None
    created_at: datetime
    updated_at: datetime


class Broadcast(BaseModel):
    id: str
    name: str
    status: Status
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    contacts_count: int
    recipients_count: int
    skipped_count: int
    sent_count: int
    failed_count: int
    delivered_count: int
    opened_count: int
    played_count: int
    click_count: int
    complained_count: int
    unsubscribed_count: int
    error_message: str | None
    segments: list[Segment]
    send_to_all: bool
    templates: list[Template]
    created_at: datetime
    updated_at: datetime


def status_of(status: str, *, started: bool) -> Status:
    """Ours, in the seed's enum: PAUSED is SENDING once started, else SCHEDULED."""
    if status == "PAUSED":
        return "SENDING" if started else "SCHEDULED"
    known: dict[str, Status] = {
        "DRAFT": "DRAFT",
        "SCHEDULED": "SCHEDULED",
        "SENDING": "SENDING",
        "SENT": "SENT",
        "CANCELLED": "CANCELLED",
        "FAILED": "FAILED",
    }
    return known[status]


def _config(campaign: Campaign) -> dict[str, Any]:
    config = {
        "campaign_name": campaign.name,
        "channel": campaign.channel,
        "template_id": str(campaign.template_id),
        "purpose": campaign.purpose,
        "from_name": campaign.from_name,
        "from_email": campaign.from_email,
        "reply_to": campaign.reply_to,
        "sms_sender": campaign.sms_sender,
    }
    return {key: value for key, value in config.items() if value is not None}


def broadcast_of(d: details.Details) -> Broadcast:
    b = d.broadcast
    counters = {name: getattr(b, name) for name in COUNTERS if name != "clicked_count"}
    templates = []
    if d.campaign is not None:
        templates.append(
            Template(
                id=str(d.campaign.id),
                broadcast_id=str(b.id),
                connection_id=None if d.connection_id is None else str(d.connection_id),
                integration_id="internal",
                recipients_count=b.recipients_count,
                config=_config(d.campaign),
                error=b.error_message,
                created_at=d.campaign.created_at,
                updated_at=d.campaign.updated_at,
            )
        )
    return Broadcast(
        id=str(b.id),
        name=b.name,
        status=status_of(b.status, started=b.started_at is not None),
        scheduled_at=b.scheduled_at,
        started_at=b.started_at,
        completed_at=b.completed_at,
        click_count=b.clicked_count,
        error_message=b.error_message,
        segments=[
            Segment(
                id=str(s.segment.id),
                name=s.segment.name,
                contacts_count=s.contacts_count,
                created_at=s.segment.created_at,
                updated_at=s.segment.updated_at,
            )
            for s in d.segments
        ],
        send_to_all=bool(b.audience.get("send_to_all")),
        templates=templates,
        created_at=b.created_at,
        updated_at=b.updated_at,
        **counters,
    )


def _org(principal: Principal, org_id: str, scope: Scope) -> int:
    """The path's org, which must be the key's own (403 otherwise)."""
    principal.require(org_id=id_in(org_id) or 0, scope=scope)  # ids start at 1
    return principal.org_id


def _broadcast_id(text: str) -> int:
    number = id_in(text)
    if number is None:
        raise NotFound("broadcast", text)
    return number


@router.post(
    "/orgs/{org_id}/broadcasts",
    summary="Create a broadcast (seed 002)",
    dependencies=[IDEMPOTENT],
    responses=error_answers(InventError, {402: NO_CREDIT}),
)
async def create_broadcast(
    org_id: str, body: BroadcastCreate, principal: PrincipalDep, session: WriteSessionDep
) -> Broadcast:
    org = _org(principal, org_id, Scope.SEND)
    broadcast = await service.create_for_audience(
        session,
        org_id=org,
        name=body.name,
        segment_ids=body.segment_ids or [],
        send_to_all=bool(body.send_to_all),
        scheduled_at=body.scheduled_at,
        campaign_id=body.campaign(),
        is_test=principal.kind is KeyKind.TEST,
    )
    [described] = await details.describe(session, org_id=org, broadcasts=[broadcast])
    return broadcast_of(described)


@router.get(
    "/orgs/{org_id}/broadcasts/{id}",
    summary="Get a broadcast (seed 002)",
)
async def get_broadcast(
    org_id: str,
    id: str,
    principal: PrincipalDep,
    session: SessionDep,
) -> Broadcast:
    org = _org(principal, org_id, Scope.READ)
    found = await details.get_details(session, org_id=org, broadcast_id=_broadcast_id(id))
    return broadcast_of(found)


@router.get(
    "/orgs/{org_id}/broadcasts",
    summary="List broadcasts, oldest first (seed 002)",
)
async def list_broadcasts(
    org_id: str,
    principal: PrincipalDep,
    session: SessionDep,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> Page[Broadcast]:
    org = _org(principal, org_id, Scope.READ)
    rows = await details.list_details(
        session, org_id=org, after_id=decode_cursor(cursor), limit=limit + 1
    )
    return paged(rows, limit, broadcast_of, key=lambda d: d.broadcast.id)


@router.put(
    "/orgs/{org_id}/broadcasts/{id}/templates",
    summary="Attach the broadcast's template (a campaign); a DRAFT is then scheduled",
    responses=error_answers(
        InventError, {402: NO_CREDIT, 409: "The broadcast already sends another"}
    ),
)
async def attach_template(
    org_id: str,
    id: str,
    body: TemplatesAttach,
    principal: PrincipalDep,
    session: WriteSessionDep,
) -> Broadcast:
    org = _org(principal, org_id, Scope.SEND)
    campaign_id = body.campaign()
    if campaign_id is None:
        raise InvalidInput.field("templates", 'name one template: [{"campaign_id": "…"}]')
    broadcast = await service.attach_campaign(
        session, org_id=org, broadcast_id=_broadcast_id(id), campaign_id=campaign_id
    )
    [described] = await details.describe(session, org_id=org, broadcasts=[broadcast])
    return broadcast_of(described)
