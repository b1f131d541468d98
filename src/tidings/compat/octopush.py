"""Seed 001, email campaigns, under `/compat/octopush`.

POST /email/campaign/send
     headers api-key + api-login
     {"recipients": [{"email", "first_name", "last_name", "param1"…"param5"}], "subject",
      "template_name" | "text", "name_from", "email_from", "purpose", "send_at",
      "emailing_service", "body_format", "language", "list_name"}
  → 200 {"ticket_number": "email_…", "number_of_contacts", "total_cost", "residual_credit"}
  → 4xx/5xx {"code": int, "message": str}

Lenient, as the document asks: the body is parsed here, not by pydantic, so that a value
of the wrong type is cast, prohibited characters are stripped, documented defaults apply
and what cannot be fixed is ignored; every such rule is a row of docs/compat.md. The send
itself is `tidings.broadcasts.adhoc`: one campaign (and template) per ticket, one broadcast.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from tidings.api.deps import PrincipalDep, RendererDep, WriteSessionDep
from tidings.api.fields import naive_as_utc
from tidings.broadcasts.adhoc import AdhocEmail, send_adhoc_email
from tidings.campaigns.schemas import Purpose
from tidings.compat.routing import Failure, dialect_router, require_scope
from tidings.contacts.normalize import normalize_email
from tidings.content.footer import language_of
from tidings.errors import InvalidInput
from tidings.idempotency.http import IDEMPOTENT
from tidings.keys.schemas import KeyKind, Scope

MAX_RECIPIENTS: Final = 10_000
PARAMS: Final = ("param1", "param2", "param3", "param4", "param5")

# (HTTP status, code). Octopush's published codes where one means the same thing
# (100, 101, 103, 104, 106, 107, 117); the 9xx codes are Tidings' own.
BY_FIELD: Final[dict[str, tuple[int, int]]] = {
    "body": (400, 100),  # malformed body
    "recipients": (400, 103),  # no recipients
    "from_email": (400, 106),  # the sender
    "email_from": (400, 106),
    "text": (400, 107),  # no content
    "recipients.email": (400, 117),  # recipients, none with a valid email
}
BY_KIND: Final[dict[str, tuple[int, int]]] = {
    "malformed": (400, 100),
    "unauthorized": (401, 101),
    "insufficient-credit": (402, 104),
    "forbidden": (403, 901),
    "not-found": (404, 902),  # template_name names no email template
    "invalid-input": (400, 903),  # any other value that could not be used
    "too-large": (413, 904),
    "unsupported-media-type": (415, 905),
    "method-not-allowed": (405, 906),
    "conflict": (409, 907),  # the same Idempotency-Key is still in progress
    "idempotency-key-reused": (422, 908),  # the Idempotency-Key was used for another request
}
INTERNAL: Final = (500, 999)
UNAVAILABLE: Final = (503, 998)
OTHER_REFUSAL: Final = 900  # any other 4xx, with its own status (429, …)


def error_shape(failure: Failure) -> Response:
    if failure.kind in BY_KIND:
        status, code = BY_KIND[failure.kind]
    elif failure.status == 503:
        status, code = UNAVAILABLE
    elif 400 <= failure.status < 500:
        status, code = failure.status, OTHER_REFUSAL
    else:
        status, code = INTERNAL
    if failure.kind == "invalid-input" and failure.errors:
        status, code = BY_FIELD.get(failure.errors[0].field, (status, code))
    if failure.status == 402:
        status, code = BY_KIND["insufficient-credit"]
    return JSONResponse({"code": code, "message": failure.detail}, status_code=status)


class OctopushError(BaseModel):
    """Every error of this dialect, whatever its status."""

    code: int = Field(description="100, 101, 103, 104, 106, 107, 117 as Octopush; 9xx Tidings'")
    message: str


router = dialect_router(
    error_shape,
    prefix="/compat/octopush",
    tag="compat: email campaign (seed 001)",
    error_model=OctopushError,
    errors={
        400: "Bad request: `code` says which (100 body, 103 recipients, 106 sender, …)",
        402: "Not enough credit (104)",
        404: "Unknown template_name (902)",
    },
)


class TicketOut(BaseModel):
    ticket_number: str
    number_of_contacts: int
    total_cost: float
    residual_credit: float


_TEXT: Final = {"type": ["string", "number"]}
REQUEST_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "description": (
        "Read leniently (docs/compat.md): numbers are cast to text, control characters "
        "dropped, unknown fields ignored, a value that cannot be used ignored or defaulted."
    ),
    "required": ["recipients", "email_from"],
    "properties": {
        "recipients": {
            "description": "Up to 10,000 (more are ignored); those without a valid email too.",
            "type": "array",
            "items": {
                "type": "object",
                "required": ["email"],
                "properties": {
                    "email": {"type": "string"},
                    "first_name": _TEXT,
                    "last_name": _TEXT,
                    **dict.fromkeys(PARAMS, _TEXT),
                },
            },
        },
        "subject": _TEXT,
        "text": {**_TEXT, "description": "The content, if no template_name"},
        "template_name": {**_TEXT, "description": "An email template of the org, by name"},
        "name_from": _TEXT,
        "email_from": {"type": "string", "description": "The sender's address"},
        "purpose": {"type": "string", "description": "`alert` or `wholesale` (the default)"},
        "send_at": {
            "type": ["string", "integer", "null"],
            "description": "ISO 8601 (no offset: UTC) or Unix seconds; absent, unusable: now",
        },
        "emailing_service": {"type": "string", "description": "`mailbox` or `gateway`"},
        "body_format": {"type": "string", "description": "`plain_text` (default) or `html`"},
        "language": {"type": "string", "description": "Of the unsubscribe mention, e.g. `fr`"},
        "list_name": {"type": "string", "description": "Creates a list of these contacts"},
    },
    "examples": [
        {
            "recipients": [{"email": "ada@example.com", "first_name": "Ada"}],
            "subject": "Spring offer",
            "text": "Hello, our spring offer is out.",
            "email_from": "news@acme.example",
            "purpose": "alert",
        }
    ],
}

# Lone surrogates too: JSON can carry them, no email can (nor PostgreSQL store them).
_CONTROL: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_BODY_CONTROL: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def as_text(value: object, *, limit: int, body: bool = False) -> str | None:
    """A string from a string or a number; control characters removed (CR, LF and tab
    become spaces, except in a body), surrounding space trimmed, cut to `limit`. None for
    anything else, or nothing left."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    text = str(value)
    text = _BODY_CONTROL.sub("", text) if body else _CONTROL.sub(" ", text)
    text = text.strip()[:limit].strip()
    return text or None


def as_email(value: object) -> str | None:
    """The address, normalised; whitespace, control characters and a `mailto:` prefix or
    `Name <…>` wrapper removed. None if it is still not an address."""
    text = as_text(value, limit=400)
    if text is None:
        return None
    if "<" in text and text.endswith(">"):
        text = text[text.rindex("<") + 1 : -1]
    text = re.sub(r"\s+", "", text)
    text = text[7:] if text.lower().startswith("mailto:") else text
    try:
        return normalize_email(text)
    except ValueError:
        return None


def as_datetime(value: object) -> datetime | None:
    """ISO 8601 (no offset: UTC) or a Unix timestamp in seconds, in UTC; None if neither
    or out of range (years 1 … 9999 in UTC)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value <= 0:
            return None
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            return None
    text = as_text(value, limit=64)
    if text is None:
        return None
    if text.isascii() and text.isdigit():
        return as_datetime(int(text))
    try:
        return naive_as_utc(datetime.fromisoformat(text))
    except ValueError:  # not a date-time, or out of range once in UTC: ignored, sent now
        return None


def as_list(value: object) -> list[Any]:
    """A list from a list, one object, or either as a JSON string; else empty."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    if isinstance(value, dict):
        return [value]
    return value if isinstance(value, list) else []


def purpose_of(value: object) -> Purpose:
    word = (as_text(value, limit=32) or "").lower()
    if word in ("alert", "transactional"):
        return Purpose.TRANSACTIONAL
    return Purpose.MARKETING  # "wholesale", "marketing", and the default


def choice(value: object, options: tuple[str, ...]) -> str | None:
    word = (as_text(value, limit=32) or "").lower().replace("-", "_")
    return word if word in options else None


def recipient_row(contact: object) -> dict[str, Any] | None:
    """The contact row (with its message's `variables`) for one recipient; None if it has
    no usable email."""
    if not isinstance(contact, Mapping):
        return None
    address = as_email(contact.get("email"))
    if address is None:
        return None
    row: dict[str, Any] = {"email": address}
    variables: dict[str, Any] = {}
    for name in ("first_name", "last_name"):
        value = as_text(contact.get(name), limit=200)
        if value is not None:
            row[name] = variables[name] = value
    for name in PARAMS:
        value = as_text(contact.get(name), limit=1000, body=True)
        if value is not None:
            variables[name] = value
    row["variables"] = variables
    return row


def parse(body: object) -> AdhocEmail:
    """The request, cleaned as docs/compat.md says; InvalidInput naming what is missing."""
    if not isinstance(body, Mapping):
        raise InvalidInput.field("body", "a JSON object")
    given = as_list(body.get("recipients"))
    if not given:
        raise InvalidInput.field("recipients", "no recipients")
    rows = [row for row in map(recipient_row, given[:MAX_RECIPIENTS]) if row is not None]
    if not rows:
        raise InvalidInput.field("recipients.email", "no contact has a valid email")
    template_name = as_text(body.get("template_name"), limit=255)
    text = as_text(body.get("text"), limit=1_000_000, body=True)
    if template_name is None and text is None:
        raise InvalidInput.field("text", "the content is missing: give template_name or text")
    sender = as_email(body.get("email_from"))
    if sender is None:
        raise InvalidInput.field("email_from", "a valid sender address is required")
    language = as_text(body.get("language"), limit=35)
    return AdhocEmail(
        recipients=rows,
        from_email=sender,
        purpose=purpose_of(body.get("purpose")),
        language=language_of(language),
        subject=as_text(body.get("subject"), limit=2000),
        template_name=template_name,
        text=text,
        html=choice(body.get("body_format"), ("plain_text", "html")) == "html",
        from_name=as_text(body.get("name_from"), limit=200),
        send_at=as_datetime(body.get("send_at")),
        email_service=choice(body.get("emailing_service"), ("mailbox", "gateway")),
        list_name=as_text(body.get("list_name"), limit=255),
    )


async def _json(request: Request) -> object:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply to parse
        raise InvalidInput.field("body", "not valid JSON") from None


@router.post(
    "/email/campaign/send",
    dependencies=[IDEMPOTENT],
    summary="Send an email campaign (seed 001)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": REQUEST_SCHEMA}},
        }
    },
)
async def send_campaign(
    request: Request, principal: PrincipalDep, session: WriteSessionDep, renderer: RendererDep
) -> TicketOut:
    require_scope(principal, Scope.SEND)
    ticket = "email_" + secrets.token_hex(7)
    sent = await send_adhoc_email(
        session,
        org_id=principal.org_id,
        renderer=renderer,
        request=parse(await _json(request)),
        ticket=ticket,
        is_test=principal.kind is KeyKind.TEST,
    )
    return TicketOut(
        ticket_number=ticket,
        number_of_contacts=sent.contacts,
        total_cost=sent.cost / 1e6,
        residual_credit=sent.balance / 1e6,
    )
