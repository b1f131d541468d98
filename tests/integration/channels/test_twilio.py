"""Twilio's Messages API against a real HTTP/1.1 gateway on loopback: the form, the
sender choice, Twilio's error bodies, its credentials kept out of reasons.

What all four HTTP SMS providers share is checked in test_http_common.py.
"""

from __future__ import annotations

import base64

from tests.support.sms_channels import (
    TWILIO_SID,
    TWILIO_TOKEN,
    AnyChannel,
    permanent,
    sms,
    transient,
    twilio_channel,
)
from tidings.channels.base import Sent
from tidings.testing import Gateway, Reply, twilio_ok


async def test_twilio_request_shape(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = lambda _: Reply(
        201, {"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued"}
    )
    channel = twilio_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(42, text="Grüezi & hi", sender=None)])

    assert result == Sent("SM0123456789abcdef0123456789abcdef")
    (request,) = gateway.requests
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json"
    basic = base64.b64encode(f"{TWILIO_SID}:{TWILIO_TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {basic}"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {
        "To": "+41793026727",
        "Body": "Grüezi & hi",
        "From": "+15005550006",
        "StatusCallback": "https://tidings.example/hooks/twilio?message_id=42",
    }


async def test_twilio_sender_choice(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = twilio_ok
    service = twilio_channel(
        gateway.url, from_number=None, messaging_service_sid="MG123", status_callback=None
    )
    numbered = twilio_channel(gateway.url)
    opened += [service, numbered]

    await service.send([sms(1, sender=None)])
    await service.send([sms(2, sender="Acme")])
    await numbered.send([sms(3, sender="+15005550001")])

    forms = [r.form() for r in gateway.requests]
    assert forms[0] == {
        "To": "+41793026727",
        "Body": "Hello from Tidings",
        "MessagingServiceSid": "MG123",
    }
    assert forms[1]["From"] == "Acme"
    assert forms[1]["MessagingServiceSid"] == "MG123"
    assert forms[2]["From"] == "+15005550001"
    assert "MessagingServiceSid" not in forms[2]


async def test_twilio_without_any_sender_fails_without_a_request(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    channel = twilio_channel(gateway.url, from_number=None)
    opened.append(channel)

    (result,) = await channel.send([sms(1, sender=None)])

    assert permanent(result).reason.startswith("no sender")
    assert gateway.requests == []


async def test_twilio_error_code_and_message_are_the_reason(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(
        400,
        {
            "code": 21211,
            "message": "The 'To' number +4179 is not a valid phone number.",
            "more_info": "https://www.twilio.com/docs/errors/21211",
            "status": 400,
        },
    )
    channel = twilio_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(1, to="+4179")])

    assert permanent(result).reason == (
        "HTTP 400: Twilio error 21211: The 'To' number +4179 is not a valid phone number."
    )


async def test_twilio_reason_hides_the_basic_credentials(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda request: Reply(
        401, {"code": 20003, "message": f"Authenticate ({request.headers['authorization']})"}
    )
    channel = twilio_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    assert (
        permanent(result).reason == "HTTP 401: Twilio error 20003: Authenticate (Basic [redacted])"
    )


async def test_twilio_rate_limit_is_transient(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = lambda _: Reply(
        429, {"code": 20429, "message": "Too Many Requests", "status": 429}, {"Retry-After": "7"}
    )
    channel = twilio_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    error = transient(result)
    assert error.retry_after == 7
    assert error.reason == "HTTP 429: Twilio error 20429: Too Many Requests"


async def test_twilio_message_failed_at_creation_is_permanent(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    created = {
        "sid": "SMfailed",
        "status": "failed",
        "error_code": 30007,
        "error_message": "Message filtered",
    }
    gateway.plan = lambda _: Reply(201, created)
    channel = twilio_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    assert permanent(result).reason == "Twilio failed: error 30007: Message filtered"
