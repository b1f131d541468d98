"""The generic JSON HTTP SMS gateway against a real HTTP/1.1 gateway on loopback: the body
template filled per message, the id read from the answer, concurrency, redirects,
secrets in the body.

What all four HTTP SMS providers share is checked in test_http_common.py.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

import httpx
import pytest

from tests.support.outbound import LOOPBACK
from tests.support.sms_channels import HTTP_TOKEN, AnyChannel, http_sms_channel, permanent, sms
from tidings.channels.base import Sent
from tidings.channels.http_sms import HttpSmsChannel, HttpSmsSettings
from tidings.testing import Gateway, Recorded, Reply, http_sms_ok


async def test_http_sms_fills_the_template_per_message(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(200, {"messages": [{"id": "gw-77", "status": "ok"}]})
    settings = HttpSmsSettings(
        url=f"{gateway.url}/v2/sms?account=acme",
        method="PUT",
        headers={"Authorization": f"Bearer {HTTP_TOKEN}", "X-Tenant": "acme"},
        body={
            "to": "{to}",
            "msisdn": "{to_digits}",
            "text": "{text}",
            "from": "{sender}",
            "reference": "tidings-{message_id}",
            "options": {"flash": False, "validity": 60, "tags": ["{message_id}", "campaign"]},
        },
        id_path="messages.0.id",
    )
    channel = HttpSmsChannel(settings, policy=LOOPBACK)
    opened.append(channel)
    # Quotes, a backslash, a newline, non-ASCII and a placeholder lookalike in the text.
    text = 'Say "hi" \\ to {sender} at {to}\nGrüezi 👋'

    (result,) = await channel.send([sms(77, text=text, sender="Acme")])

    assert result == Sent("gw-77")
    (request,) = gateway.requests
    assert request.method == "PUT"
    assert request.path == "/v2/sms"
    assert request.query == {"account": ["acme"]}
    assert request.headers["authorization"] == f"Bearer {HTTP_TOKEN}"
    assert request.headers["x-tenant"] == "acme"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "to": "+41793026727",
        "msisdn": "41793026727",
        "text": text,
        "from": "Acme",
        "reference": "tidings-77",
        "options": {"flash": False, "validity": 60, "tags": ["77", "campaign"]},
    }


async def test_http_sms_sends_null_for_a_missing_sender(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(200, {"id": 12345})
    settings = HttpSmsSettings(
        url=gateway.url,
        body={"from": "{sender}", "label": "by {sender}", "to": "{to}"},
        id_path="id",
    )
    channel = HttpSmsChannel(settings, policy=LOOPBACK)
    opened.append(channel)

    (result,) = await channel.send([sms(1, sender=None)])

    assert result == Sent("12345")  # a numeric id is read as text
    assert gateway.requests[0].method == "POST"
    assert gateway.requests[0].json() == {"from": None, "label": "by ", "to": "+41793026727"}


@pytest.mark.parametrize(
    "reply",
    [
        Reply(200, {"messages": []}),
        Reply(201, {"messages": [{"id": None}]}),
        Reply(200, "OK"),
        Reply(202, b""),
    ],
    ids=["no entry", "null id", "not json", "empty"],
)
async def test_http_sms_without_an_id_is_not_retried(
    gateway: Gateway, opened: list[AnyChannel], reply: Reply
) -> None:
    gateway.plan = lambda _: reply
    channel = http_sms_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(5)])

    assert "no id at 'messages.0.id'" in permanent(result).reason


async def test_http_sms_without_id_path_uses_our_id(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(204)
    channel = HttpSmsChannel(HttpSmsSettings(url=gateway.url, body={"to": "{to}"}), policy=LOOPBACK)
    opened.append(channel)

    assert list(await channel.send([sms(8), sms(9)])) == [Sent("http-8"), Sent("http-9")]


@pytest.mark.parametrize("client", ["own", "injected"])
async def test_http_sms_keeps_at_most_max_concurrency_requests_in_flight(
    gateway: Gateway, opened: list[AnyChannel], client: str
) -> None:
    in_flight = 0
    peak = 0
    full = asyncio.Event()

    async def plan(request: Recorded) -> Reply:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        if in_flight == 3:
            full.set()
        # Hold the first requests until three are in flight (or give up, and let the
        # peak assertion below say so), so the limit is reached, not merely allowed.
        with suppress(TimeoutError):
            await asyncio.wait_for(full.wait(), timeout=0.5)
        in_flight -= 1
        return http_sms_ok(request)

    gateway.plan = plan
    # An injected client has httpx's default pool of 100: the channel's own limit holds.
    async with httpx.AsyncClient() as injected:
        channel = http_sms_channel(
            gateway.url, client=injected if client == "injected" else None, max_concurrency=3
        )
        opened.append(channel)

        results = await channel.send([sms(i) for i in range(1, 13)])

    assert list(results) == [Sent(f"gw-{i}") for i in range(1, 13)]
    assert peak == 3
    assert len(gateway.requests) == 12
    assert gateway.connections == 3


async def test_http_sms_does_not_follow_redirects(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(302, "", {"Location": "/elsewhere"})
    channel = http_sms_channel(gateway.url)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    assert permanent(result).reason == "HTTP 302"
    assert [r.path for r in gateway.requests] == ["/api/send"]


async def test_http_sms_hides_a_key_given_in_the_body(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda request: Reply(401, f"unknown api_key {request.json()['api_key']}")
    settings = HttpSmsSettings(
        url=gateway.url, body={"api_key": "body-key-31337", "to": "{to}", "text": "{text}"}
    )
    channel = HttpSmsChannel(settings, policy=LOOPBACK)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    assert permanent(result).reason == "HTTP 401: unknown api_key [redacted]"
