"""Seed 003, SMS invites to a chat application, under `/compat/infobip`.

POST /omnichat/1/applications/{applicationKey}/integrations/{integrationType}/invite
     Basic auth (org login : API key)
     {"to": "41793026727", "linkPlaceholder": "<link>", "message": "… <link> …"}
  → 200 {"to", "messageCount", "messageId", "status": {groupId, groupName, id, name, description}}
  → 400/401/403/404 {"requestError": {"serviceException": {"messageId", "text"}}}

GET /sms/1/logs?messageId=…  — where an invite has got to since, in Infobip's status groups.

The placeholder becomes the recipient's own invite link: a signed `/l/{token}` that
redirects to the integration's `target_url` and records the click.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final

from fastapi import Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from tidings.api.deps import PrincipalDep, SessionDep, SettingsDep, WriteSessionDep
from tidings.api.fields import id_in
from tidings.applications.service import find_integration
from tidings.compat.routing import Failure, dialect_router, require_scope
from tidings.errors import InvalidInput, NotFound
from tidings.idempotency.http import IDEMPOTENT
from tidings.invites import service
from tidings.keys.schemas import KeyKind, Scope
from tidings.links.deps import SignerDep
from tidings.messages.service import get_message
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus

_ERRORS: Final = {
    400: ("BAD_REQUEST", "Bad request"),
    401: ("UNAUTHORIZED", "Invalid login details"),
    402: ("NOT_ENOUGH_CREDITS", "Not enough credits"),
    403: ("FORBIDDEN", "Forbidden"),
    404: ("NOT_FOUND", "Not found"),
    405: ("METHOD_NOT_ALLOWED", "Method not allowed"),
    409: ("CONFLICT", "Conflict"),
    422: ("IDEMPOTENCY_KEY_REUSED", "Idempotency-Key already used with another request"),
    413: ("PAYLOAD_TOO_LARGE", "Request body too large"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Unsupported media type"),
    429: ("TOO_MANY_REQUESTS", "Too many requests"),
    503: ("SERVICE_UNAVAILABLE", "Service unavailable"),
}


def error_shape(failure: Failure) -> Response:
    status = 400 if failure.kind in ("malformed", "invalid-input") else failure.status
    message_id, text = _ERRORS.get(status, ("GENERAL_ERROR", "Something went wrong"))
    body = {"requestError": {"serviceException": {"messageId": message_id, "text": text}}}
    return JSONResponse(body, status_code=status)


class ServiceException(BaseModel):
    messageId: str  # noqa: N815 — the dialect's own field names
    text: str


class RequestError(BaseModel):
    serviceException: ServiceException  # noqa: N815


class InfobipError(BaseModel):
    """Every error of this dialect, whatever its status."""

    requestError: RequestError  # noqa: N815


router = dialect_router(
    error_shape,
    prefix="/compat/infobip",
    tag="compat: SMS invites (seed 003)",
    error_model=InfobipError,
    errors={
        400: "Bad request: malformed body, `to` not a number, `message` without the placeholder",
        402: "Not enough credits",
    },
)


class Status(BaseModel):
    groupId: int  # noqa: N815 — the dialect's own field names
    groupName: str  # noqa: N815
    id: int
    name: str
    description: str


# Infobip's statuses by their name here: (group id, group name, id, name, description).
_STATUS: Final[dict[str, Status]] = {
    "accepted": Status(groupId=1, groupName="PENDING", id=7, name="PENDING_ENROUTE",
                       description="Message sent to next instance"),
    "delivered": Status(groupId=3, groupName="DELIVERED", id=5, name="DELIVERED_TO_HANDSET",
                        description="Message delivered to handset"),
    "failed": Status(groupId=2, groupName="UNDELIVERABLE", id=9,
                     name="UNDELIVERABLE_NOT_DELIVERED", description="Message sent not delivered"),
    "expired": Status(groupId=4, groupName="EXPIRED", id=15, name="EXPIRED_EXPIRED",
                      description="Message expired"),
    "rejected": Status(groupId=5, groupName="REJECTED", id=6, name="REJECTED_NETWORK",
                       description="Network is forbidden"),
}  # fmt: skip


def status_of(message: Message) -> Status:
    """Queued, sending, held and sent are PENDING; delivered, failed (UNDELIVERABLE), and
    skipped or cancelled (REJECTED) are final."""
    status = MessageStatus(message.status)
    if status in (MessageStatus.DELIVERED, MessageStatus.FAILED):
        return _STATUS[status.value]
    if status in (MessageStatus.SKIPPED, MessageStatus.CANCELLED):
        return _STATUS["rejected"]
    return _STATUS["accepted"]


def done_at(message: Message) -> datetime | None:
    """Infobip's `doneAt`: when the message reached its final group (the delivery report's
    time for DELIVERED, the outcome's for the others); None while it is PENDING, even sent."""
    if status_of(message) is _STATUS["accepted"]:
        return None
    if message.status == MessageStatus.DELIVERED:
        return message.delivered_at
    return message.finished_at


class InviteRequest(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "to": "41793026727",
                    "linkPlaceholder": "<link>",
                    "message": "Hello, if you'd like to hear more about Foo, follow us at <link>",
                }
            ]
        }
    )

    to: str = Field(min_length=1, max_length=32)
    link_placeholder: str = Field(alias="linkPlaceholder", min_length=1, max_length=64)
    message: str = Field(min_length=1, max_length=1600)

    @field_validator("to", mode="before")
    @classmethod
    def _number_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class InviteSent(BaseModel):
    to: str
    messageCount: int  # noqa: N815
    messageId: str  # noqa: N815
    status: Status


@router.post(
    "/omnichat/1/applications/{applicationKey}/integrations/{integrationType}/invite",
    dependencies=[IDEMPOTENT],
    summary="Send an SMS invite (seed 003)",
)
async def send_invite(
    applicationKey: str,  # noqa: N803
    integrationType: str,  # noqa: N803
    body: InviteRequest,
    principal: PrincipalDep,
    session: WriteSessionDep,
    signer: SignerDep,
    settings: SettingsDep,
) -> InviteSent:
    require_scope(principal, Scope.SEND)
    if body.link_placeholder not in body.message:
        raise InvalidInput.field("message", "does not contain the link placeholder")
    _, integration = await find_integration(
        session, org_id=principal.org_id, key=applicationKey, type_=integrationType
    )
    campaign_id = integration.campaign_id
    sent = await service.send_link_invite(
        session,
        org_id=principal.org_id,
        campaign_id=campaign_id,
        to=body.to,
        text=body.message,
        placeholder=body.link_placeholder,
        signer=signer,
        public_url=settings.public_url,
        is_test=principal.kind is KeyKind.TEST,
    )
    return InviteSent(
        to=body.to,
        messageCount=sent.segments,
        messageId=str(sent.message.id),
        status=status_of(sent.message),
    )


class LogEntry(BaseModel):
    messageId: str  # noqa: N815
    to: str | None
    sentAt: datetime | None  # noqa: N815
    doneAt: datetime | None  # noqa: N815
    smsCount: int | None  # noqa: N815
    status: Status


class Logs(BaseModel):
    results: list[LogEntry]


@router.get("/sms/1/logs", summary="Where an invite has got to (Infobip status groups)")
async def logs(
    principal: PrincipalDep,
    session: SessionDep,
    message_id: Annotated[str, Query(alias="messageId")],
) -> Logs:
    require_scope(principal, Scope.READ)
    number = id_in(message_id)
    if number is None:  # names no message, as an unknown one
        return Logs(results=[])
    try:
        message = await get_message(session, org_id=principal.org_id, message_id=number)
    except NotFound:
        return Logs(results=[])
    entry = LogEntry(
        messageId=str(message.id),
        to=(message.recipient or "").lstrip("+") or None,
        sentAt=message.sent_at,
        doneAt=done_at(message),
        smsCount=message.segments,
        status=status_of(message),
    )
    return Logs(results=[entry])
