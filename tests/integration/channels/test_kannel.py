"""Kannel's smsbox against a real HTTP/1.1 gateway on loopback: the sendsms query, the
coding chosen by alphabet, its answers, its password kept out of reasons.

What all four HTTP SMS providers share is checked in test_http_common.py.
"""

from __future__ import annotations

import pytest

from tests.support.outbound import LOOPBACK
from tests.support.sms_channels import KANNEL_PASSWORD, AnyChannel, kannel_channel, permanent, sms
from tidings.channels.base import Sent
from tidings.channels.kannel import KannelChannel, KannelSettings
from tidings.testing import Gateway, Reply, kannel_ok


async def test_kannel_request_shape(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = kannel_ok
    channel = kannel_channel(gateway.url + "/")  # a trailing slash is not doubled
    opened.append(channel)

    (result,) = await channel.send([sms(42, text="Hello & welcome, 100% {free}", sender="Acme")])

    assert result == Sent("kannel-42")
    (request,) = gateway.requests
    assert request.method == "GET"
    assert request.path == "/cgi-bin/sendsms"
    assert request.body == b""
    assert request.query == {
        "username": ["tidings"],
        "password": [KANNEL_PASSWORD],
        "from": ["Acme"],
        "to": ["+41793026727"],
        "text": ["Hello & welcome, 100% {free}"],
        "charset": ["UTF-8"],
        "coding": ["0"],
        "dlr-mask": ["31"],
        "dlr-url": ["https://tidings.example/hooks/kannel?message_id=42&status=%d"],
    }


@pytest.mark.parametrize(
    ("text", "coding"),
    [
        ("Grüezi! Price: 5€ [promo] {code}", "0"),  # GSM-7, extension table included
        ("Привет, мир", "2"),
        ("Thanks 👍", "2"),
        ("It’s here", "2"),  # a curly apostrophe is not GSM
    ],
)
async def test_kannel_coding_follows_the_alphabet(
    gateway: Gateway, opened: list[AnyChannel], text: str, coding: str
) -> None:
    gateway.plan = kannel_ok
    channel = kannel_channel(gateway.url)
    opened.append(channel)

    await channel.send([sms(1, text=text)])

    (request,) = gateway.requests
    assert request.param("coding") == coding
    assert request.param("charset") == "UTF-8"
    assert request.param("text") == text


async def test_kannel_queued_for_later_is_sent(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = lambda _: Reply(202, "3: Queued for later delivery")
    channel = kannel_channel(gateway.url)
    opened.append(channel)

    assert list(await channel.send([sms(3), sms(4)])) == [Sent("kannel-3"), Sent("kannel-4")]


async def test_kannel_without_dlr_url_or_sender(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = kannel_ok
    settings = KannelSettings(base_url=gateway.url, username="u", password="p")
    channel = KannelChannel(settings, policy=LOOPBACK)
    opened.append(channel)

    await channel.send([sms(1, sender=None)])

    assert sorted(gateway.requests[0].query) == [
        "charset",
        "coding",
        "password",
        "text",
        "to",
        "username",
    ]


async def test_kannel_rejection_is_permanent_and_hides_the_encoded_password(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    # Kannel's 403 names the user; this one also echoes the raw, encoded request line.
    gateway.plan = lambda request: Reply(403, f"Authorization failed for sendsms {request.target}")
    channel = kannel_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    reason = permanent(result).reason
    assert reason.startswith("HTTP 403: Authorization failed for sendsms /cgi-bin/sendsms?")
    assert "password=[redacted]" in reason
    for fragment in ("p@ss", "p%40ss", "k4nnel"):
        assert fragment not in reason
