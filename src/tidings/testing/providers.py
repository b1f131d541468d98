"""What each SMS provider answers to a send that it accepts, as `Plan`s for a `Gateway`.

The shapes are the providers' own (see each channel module's docstring): a channel read
against them reads the real thing. An error answer is one line in the test that needs it
(`Reply(429, …, {"Retry-After": "7"})`), so only the answers to a good send live here.

    http_sms_ok   the generic JSON gateway, as the tests configure it
    kannel_ok     Kannel's smsbox: 202 "0: Accepted for delivery"
    infobip_ok    Infobip's /sms/2/text/advanced: every message PENDING (or REJECTED)
    twilio_ok     Twilio's Messages.json: 201 and the created message, "queued"
"""

from __future__ import annotations

import uuid
from collections.abc import Container
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Final

from tidings.testing.gateway import Recorded, Reply

INFOBIP_PENDING: Final = {
    "groupId": 1,
    "groupName": "PENDING",
    "id": 26,
    "name": "PENDING_ACCEPTED",
    "description": "Message sent to next instance",
}
INFOBIP_REJECTED: Final = {
    "groupId": 5,
    "groupName": "REJECTED",
    "id": 51,
    "name": "MISSING_TO",
    "description": "Missing destination.",
}


def http_sms_ok(request: Recorded) -> Reply:
    """A generic gateway's 200 {"messages": [{"id": "gw-<ref>"}]}, for a body template
    holding `"ref": "{message_id}"` and `id_path="messages.0.id"`."""
    return Reply(200, {"messages": [{"id": f"gw-{request.json()['ref']}"}]})


def kannel_ok(request: Recorded) -> Reply:
    """Kannel took the message (it gives no id: the channel makes "kannel-<id>")."""
    return Reply(202, "0: Accepted for delivery")


def infobip_ok(request: Recorded, *, rejected: Container[str] = frozenset()) -> Reply:
    """Every message PENDING, those whose messageId is in `rejected` REJECTED.

    The entries come in reverse order: nothing in Infobip's API promises the request's,
    so a channel must match them by messageId, not by position.
    """
    body = request.json()
    entries: list[dict[str, Any]] = []
    for message in body["messages"]:
        (destination,) = message["destinations"]
        message_id = destination["messageId"]
        status = INFOBIP_REJECTED if message_id in rejected else INFOBIP_PENDING
        entry = {"to": destination["to"], "messageId": message_id, "status": dict(status)}
        entries.append(entry)
    return Reply(200, {"bulkId": body["bulkId"], "messages": entries[::-1]})


def twilio_ok(request: Recorded) -> Reply:
    """The 201 Twilio answers a create with: the message resource, a new "SM…" sid,
    "queued" (or "accepted" when a Messaging Service chooses the sender)."""
    form = request.form()
    account = request.path.split("/")[3]  # /2010-04-01/Accounts/{sid}/Messages.json
    sid = "SM" + uuid.uuid4().hex
    uri = f"/2010-04-01/Accounts/{account}/Messages/{sid}"
    created = format_datetime(datetime.now(UTC), usegmt=True)
    service = form.get("MessagingServiceSid")
    return Reply(
        201,
        {
            "account_sid": account,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": created,
            "date_sent": None,
            "date_updated": created,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": form["To"],
            "uri": f"{uri}.json",
        },
    )
