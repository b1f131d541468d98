"""Reading bounce and complaint reports: pure functions over a message's raw bytes.

    multipart/report; report-type=delivery-status   (DSN, RFC 3464)
        text/plain                      the human explanation (ignored)
        message/delivery-status         per-message fields, then one block per recipient:
                                        Final-Recipient, Action, Status, Diagnostic-Code
        text/rfc822-headers | message/rfc822   the returned original → its Message-ID
    multipart/report; report-type=feedback-report   (ARF, RFC 5965)
        text/plain                      (ignored)
        message/feedback-report         Feedback-Type, Original-Rcpt-To
        message/rfc822 | text/rfc822-headers   the original → its Message-ID and To

One `Report` per recipient block of a DSN, one per ARF. The kind:
`Action: failed` with a 5.x.x status → `bounced` (hard); `failed` with 4.x.x, or
`delayed` → `deferred` (soft); `delivered`, `relayed`, `expanded` → `delivered`; an ARF →
`complained`. Anything else (not a report, no recipient block, an unknown action) gives
no report: `parse` never raises on bad input.

Matching to what we sent: a report carries its original's Message-ID (`original`,
without angle brackets), which the service looks up in `messages.email_message_id`: our
Message-IDs are random (`content.mime.new_message_id`), stored when sent. Messages sent
before migration 0025 went with `<message id>.<campaign id>@domain`, still read back by
`legacy_ids`. A report whose original carries no Message-ID has `original=None`; the
service ignores it, and any it finds no message for, rather than guess by address, so a
forged or misdirected report cannot suppress anybody.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser
from email.utils import getaddresses
from typing import Literal

Kind = Literal["bounced", "deferred", "delivered", "complained"]

_OUR_ID = re.compile(r"<?\s*(\d{1,18})\.(\d{1,18})@[^>\s]+\s*>?")
_STATUS = re.compile(r"([245])\.\d{1,3}\.\d{1,3}")
_ADDRESS_TYPE = re.compile(r"\s*[A-Za-z0-9-]+\s*;")  # RFC 3464's `rfc822;`
_DELIVERED = frozenset({"delivered", "relayed", "expanded"})


@dataclass(frozen=True, slots=True)
class OriginalId:
    """Our ids, read back from a Message-ID of the form used before migration 0025."""

    message_id: int
    campaign_id: int


@dataclass(frozen=True, slots=True)
class Report:
    """What one report says about one recipient of one of our messages."""

    kind: Kind
    report_id: str  # the report's own Message-ID (idempotency key), "" when absent
    recipient: str | None  # Final-Recipient / Original-Rcpt-To / the original's To
    original: str | None  # the original's Message-ID, no brackets; None: none found
    status: str | None = None  # DSN status code, e.g. 5.1.1
    diagnostic: str | None = None  # DSN Diagnostic-Code, trimmed
    feedback_type: str | None = None  # ARF Feedback-Type, e.g. abuse


def legacy_ids(message_id: str | None) -> OriginalId | None:
    """The (message, campaign) ids in a Message-ID of the form Tidings wrote before
    migration 0025, `<message id>.<campaign id>@domain`, else None."""
    if not message_id:
        return None
    match = _OUR_ID.fullmatch(message_id.strip())
    if match is None:
        return None
    return OriginalId(int(match[1]), int(match[2]))


def bare_id(value: str | None) -> str | None:
    """A Message-ID header's id without angle brackets and whitespace, else None."""
    if not value:
        return None
    bare = value.strip().removeprefix("<").removesuffix(">").strip()
    return bare if bare and "@" in bare and len(bare) <= 255 else None


def parse(raw: bytes) -> list[Report]:
    """The reports in a raw RFC 5322 message; [] for anything that is not a DSN or ARF."""
    try:
        message = email.message_from_bytes(raw, policy=policy.default)
        if message.get_content_type() != "multipart/report":
            return []
        report_type = str(message.get_param("report-type", "")).lower()
        report_id = _field(message, "Message-ID") or ""
        if report_type == "delivery-status":
            return _dsn(message, report_id)
        if report_type == "feedback-report":
            return _arf(message, report_id)
    except Exception:  # malformed mail must not stop a mailbox
        return []
    return []


def _dsn(message: Message, report_id: str) -> list[Report]:
    status_part = _part(message, "message/delivery-status")
    if status_part is None:
        return []
    blocks = status_part.get_payload()
    if not isinstance(blocks, list) or len(blocks) < 2:
        return []
    original = _original_headers(message)
    ours = bare_id(_field(original, "Message-ID")) if original is not None else None
    reports = []
    for block in blocks[1:]:  # the first block is per-message
        if not isinstance(block, Message):
            continue
        action = (_field(block, "Action") or "").lower()
        status_match = _STATUS.search(_field(block, "Status") or "")
        status = status_match[0] if status_match else None
        if action == "failed":
            kind: Kind = "deferred" if status and status.startswith("4") else "bounced"
        elif action == "delayed":
            kind = "deferred"
        elif action in _DELIVERED:
            kind = "delivered"
        else:
            continue
        diagnostic = _field(block, "Diagnostic-Code")
        reports.append(
            Report(
                kind=kind,
                report_id=report_id,
                recipient=_address(_field(block, "Final-Recipient") or
                                   _field(block, "Original-Recipient")),
                original=ours,
                status=status,
                diagnostic=diagnostic[:500] if diagnostic else None,
            )
        )  # fmt: skip
    return reports


def _arf(message: Message, report_id: str) -> list[Report]:
    feedback = _part(message, "message/feedback-report")
    if feedback is None:
        return []
    fields = feedback.get_payload()
    block = fields[0] if isinstance(fields, list) and fields else None
    if not isinstance(block, Message):
        payload = feedback.get_payload(decode=True)
        block = BytesHeaderParser(policy=policy.default).parsebytes(
            payload if isinstance(payload, bytes) else b""
        )
    original = _original_headers(message)
    recipient = _address(_field(block, "Original-Rcpt-To"))
    if recipient is None and original is not None:
        recipient = _address(_field(original, "To"))
    return [
        Report(
            kind="complained",
            report_id=report_id,
            recipient=recipient,
            original=bare_id(_field(original, "Message-ID")) if original is not None else None,
            feedback_type=(_field(block, "Feedback-Type") or "abuse").lower(),
        )
    ]


def _part(message: Message, content_type: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() == content_type:
            return part
    return None


def _original_headers(message: Message) -> Message | None:
    """The returned original's headers: a message/rfc822 part or a text/rfc822-headers one."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
        if kind == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return BytesHeaderParser(policy=policy.default).parsebytes(payload)
    return None


def _field(message: Message | EmailMessage, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def _address(value: str | None) -> str | None:
    """The exact address of `rfc822; a@b` (RFC 3464 address-type; address), of `<a@b>`,
    or of a header's `Alice <a@b>` (the first, in a list): never the display name, nor
    a bracket left over."""
    if not value:
        return None
    typed = _ADDRESS_TYPE.match(value)
    found = [a for _, a in getaddresses([value[typed.end() :] if typed else value]) if "@" in a]
    return found[0] if found else None
