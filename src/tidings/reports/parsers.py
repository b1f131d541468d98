"""What each provider's delivery report says, and how each one is authenticated.

A parser turns one request into `Report`s: which message (our id, or the provider's id
we stored as `messages.provider_id`), what happened (an event type, or None for an
intermediate state that records nothing), and the report's identity for idempotency.
Parsers are pure: no I/O, no database. A body they cannot read raises `Malformed`.

    provider         message by                       delivered  bounced              nothing
    Kannel  %d type  our id (`message_id` in dlr-url)  1          2, 16                4, 8
    Infobip group    `messageId` (the provider id)     DELIVERED  UNDELIVERABLE,       PENDING
                                                                  EXPIRED, REJECTED
    Twilio  status   `MessageSid` (the provider id)    delivered  undelivered, failed  the rest
    generic `type`   `message_id` or `provider_id`     delivered  bounced (also
                                                                  deferred, complained)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from tidings.webhooks import signing

KANNEL_TYPES: Final = {1: "delivered", 2: "bounced", 16: "bounced", 4: None, 8: None}
INFOBIP_GROUPS: Final = {
    "DELIVERED": "delivered",
    "UNDELIVERABLE": "bounced",
    "EXPIRED": "bounced",
    "REJECTED": "bounced",
    "PENDING": None,
}
TWILIO_FINAL: Final = {"delivered": "delivered", "undelivered": "bounced", "failed": "bounced"}
GENERIC_TYPES: Final = frozenset({"delivered", "bounced", "deferred", "complained"})


class Malformed(ValueError):
    """The body is not a report of this provider."""


@dataclass(frozen=True, slots=True)
class Report:
    """One report about one message. `key` is what makes a replay the same report:
    for the SMS providers the outcome itself (one delivery, one failure per message),
    for the generic format the sender's report id."""

    type: str | None
    message_id: int | None = None
    provider_id: str | None = None
    key: str | None = None
    permanent: bool = False
    occurred_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)


# --- authentication -------------------------------------------------------------------


def twilio_signature(auth_token: str, url: str, params: Mapping[str, str]) -> str:
    """Twilio's `X-Twilio-Signature`: base64 HMAC-SHA1, keyed with the auth token, of the
    full URL followed by every POST parameter's name and value, sorted by name."""
    signed = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), signed.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def twilio_valid(auth_token: str, urls: list[str], params: Mapping[str, str], given: str) -> bool:
    """Whether `given` signs the request as seen at any of `urls` (constant time each)."""
    return any(
        hmac.compare_digest(twilio_signature(auth_token, url, params).encode(), given.encode())
        for url in urls
    )


def standard_valid(secret: str, *, msg_id: str, timestamp: int, body: bytes, given: str) -> bool:
    """Whether any `v1,<sig>` of a Standard Webhooks `webhook-signature` header signs
    `{id}.{timestamp}.{body}` with `secret` (`whsec_<base64 key>`)."""
    expected = signing.sign(secret, msg_id=msg_id, timestamp=timestamp, body=body).encode()
    return any(hmac.compare_digest(expected, part.encode()) for part in given.split())


# --- parsing --------------------------------------------------------------------------


def kannel(query: Mapping[str, str]) -> list[Report]:
    """A Kannel DLR: the dlr-url's query, e.g. `?message_id={message_id}&type=%d
    &smsc-id=%i&reply=%A&ts=%T`. Kannel substitutes %d with the report type."""
    try:
        message_id = int(query["message_id"])
        kind = int(query["type"])
    except (KeyError, ValueError) as exc:
        raise Malformed("message_id and type (integers) are required") from exc
    if kind not in KANNEL_TYPES:
        raise Malformed(f"unknown DLR type {kind}")
    event = KANNEL_TYPES[kind]
    data = {"kannel_type": kind} | {k: query[k][:200] for k in ("smsc-id", "reply") if query.get(k)}
    return [Report(event, message_id=message_id, occurred_at=_unix(query.get("ts")), data=data)]


def infobip(body: bytes) -> list[Report]:
    """Infobip delivery reports: `{"results": [{"messageId", "status": {"groupName", …},
    "error": {…}, "doneAt", …}, …]}`."""
    document = _json(body)
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, list):
        raise Malformed("results[] is required")
    reports = []
    for item in results:
        if not isinstance(item, dict) or not isinstance(item.get("messageId"), str):
            raise Malformed("each result needs a messageId")
        status: dict[str, Any] = item["status"] if isinstance(item.get("status"), dict) else {}
        group = str(status.get("groupName") or "")
        if group not in INFOBIP_GROUPS:
            raise Malformed(f"unknown status group {group!r}")
        data = {"status": f"{group}/{status.get('name')}"}
        error = item.get("error")
        if isinstance(error, dict) and error.get("name") not in (None, "NO_ERROR"):
            data["error"] = str(error.get("name"))[:200]
        reports.append(
            Report(
                INFOBIP_GROUPS[group],
                provider_id=item["messageId"],
                occurred_at=_iso(item.get("doneAt")),
                data=data,
            )
        )
    return reports


def twilio(form: Mapping[str, str]) -> list[Report]:
    """A Twilio status callback: form fields `MessageSid`, `MessageStatus`, `ErrorCode`."""
    sid, status = form.get("MessageSid"), form.get("MessageStatus")
    if not sid or not status:
        raise Malformed("MessageSid and MessageStatus are required")
    data = {"status": status[:32]}
    if form.get("ErrorCode"):
        data["error"] = form["ErrorCode"][:16]
    return [Report(TWILIO_FINAL.get(status), provider_id=sid, data=data)]


def generic(body: bytes) -> list[Report]:
    """The generic format: `{"reports": [{"id", "message_id" | "provider_id", "type",
    "permanent"?, "reason"?, "occurred_at"?}, …]}`."""
    document = _json(body)
    items = document.get("reports") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise Malformed("reports[] is required")
    reports = []
    for item in items:
        if not isinstance(item, dict):
            raise Malformed("each report is an object")
        report_id, kind = item.get("id"), item.get("type")
        message_id, provider_id = item.get("message_id"), item.get("provider_id")
        if not isinstance(report_id, str) or not 0 < len(report_id) <= 100:
            raise Malformed("each report needs an id (a string of up to 100 characters)")
        if kind not in GENERIC_TYPES:
            raise Malformed(f"type: one of {', '.join(sorted(GENERIC_TYPES))}")
        if not (isinstance(message_id, int) and not isinstance(message_id, bool)):
            message_id = None
        if not isinstance(provider_id, str):
            provider_id = None
        if message_id is None and provider_id is None:
            raise Malformed("each report needs message_id or provider_id")
        reason = item.get("reason")
        reports.append(
            Report(
                kind,
                message_id=message_id,
                provider_id=provider_id,
                key=report_id,
                permanent=item.get("permanent") is True,
                occurred_at=_iso(item.get("occurred_at")),
                data={"reason": reason[:500]} if isinstance(reason, str) else {},
            )
        )
    return reports


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Malformed("not JSON") from exc


def _iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # Infobip writes "+0000"; Python 3.11+ reads both that and "+00:00".
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _unix(value: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(value), UTC) if value else None
    except (ValueError, OverflowError, OSError):
        return None
