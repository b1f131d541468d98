"""The HTTP SMS channels as their integration tests build them: one SMS to send, the four
providers' channels with test credentials, and result checks.

Every channel takes the gateway's URL: a `tidings.testing.Gateway` on loopback, or one
where nothing listens; loopback is open to them (`tests.support.outbound`).
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.outbound import LOOPBACK
from tidings.channels.base import Outgoing, PermanentSendError, Result, TransientSendError
from tidings.channels.http_sms import HttpSmsChannel, HttpSmsSettings
from tidings.channels.infobip import InfobipChannel, InfobipSettings
from tidings.channels.kannel import KannelChannel, KannelSettings
from tidings.channels.twilio import TwilioChannel, TwilioSettings

AnyChannel = HttpSmsChannel | KannelChannel | InfobipChannel | TwilioChannel


def sms(
    message_id: int = 1,
    *,
    to: str = "+41793026727",
    text: str = "Hello from Tidings",
    sender: str | None = "Tidings",
) -> Outgoing:
    return Outgoing(
        message_id=message_id,
        org_id=1,
        channel="sms",
        sender=sender,
        recipient=to,
        subject=None,
        content=text,
        segments=1,
    )


def permanent(result: Result) -> PermanentSendError:
    assert isinstance(result, PermanentSendError), result
    return result


def transient(result: Result) -> TransientSendError:
    assert isinstance(result, TransientSendError), result
    return result


HTTP_TOKEN = "hsms-tok-5f2b9c0d4e"
KANNEL_PASSWORD = "k4nnel p@ss&word"
INFOBIP_KEY = "ib-key-0a1b2c3d4e5f"
TWILIO_SID = "AC" + "0123456789abcdef" * 2
TWILIO_TOKEN = "tw-token-9e8d7c6b5a"
DLR_URL = "https://tidings.example/hooks/kannel?message_id={message_id}&status=%d"


def http_sms_channel(
    url: str, *, client: httpx.AsyncClient | None = None, max_concurrency: int = 10
) -> HttpSmsChannel:
    settings = HttpSmsSettings(
        url=f"{url}/api/send",
        headers={"Authorization": f"Bearer {HTTP_TOKEN}"},
        body={"to": "{to_digits}", "text": "{text}", "ref": "{message_id}"},
        id_path="messages.0.id",
    )
    return HttpSmsChannel(settings, client=client, max_concurrency=max_concurrency, policy=LOOPBACK)


def kannel_channel(
    url: str, *, client: httpx.AsyncClient | None = None, max_concurrency: int = 10
) -> KannelChannel:
    settings = KannelSettings(
        base_url=url, username="tidings", password=KANNEL_PASSWORD, dlr_url=DLR_URL
    )
    return KannelChannel(settings, client=client, max_concurrency=max_concurrency, policy=LOOPBACK)


def infobip_channel(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_concurrency: int = 10,
    batch_size: int = 2,  # small, so the shared tests make several requests
) -> InfobipChannel:
    settings = InfobipSettings(base_url=url, api_key=INFOBIP_KEY, batch_size=batch_size)
    return InfobipChannel(settings, client=client, max_concurrency=max_concurrency, policy=LOOPBACK)


def twilio_channel(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_concurrency: int = 10,
    **overrides: Any,
) -> TwilioChannel:
    options: dict[str, Any] = {
        "account_sid": TWILIO_SID,
        "auth_token": TWILIO_TOKEN,
        "base_url": url,
        "from_number": "+15005550006",
        "status_callback": "https://tidings.example/hooks/twilio?message_id={message_id}",
    }
    settings = TwilioSettings(**(options | overrides))
    return TwilioChannel(settings, client=client, max_concurrency=max_concurrency, policy=LOOPBACK)
