"""Infobip's SMS API v2 against a real HTTP/1.1 gateway on loopback: the request body,
chunking, statuses matched by messageId, errors per request.

What all four HTTP SMS providers share is checked in test_http_common.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.sms_channels import (
    INFOBIP_KEY,
    AnyChannel,
    infobip_channel,
    permanent,
    sms,
    transient,
)
from tidings.channels.base import Sent
from tidings.testing import Gateway, Recorded, Reply, infobip_ok


async def test_infobip_request_shape(gateway: Gateway, opened: list[AnyChannel]) -> None:
    gateway.plan = infobip_ok
    channel = infobip_channel(gateway.url, batch_size=100)
    opened.append(channel)

    results = await channel.send([sms(42, sender="Acme"), sms(43, to="+14155550100", sender=None)])

    assert list(results) == [Sent("42"), Sent("43")]
    (request,) = gateway.requests
    assert request.method == "POST"
    assert request.path == "/sms/2/text/advanced"
    assert request.headers["authorization"] == f"App {INFOBIP_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    body = request.json()
    assert isinstance(body.pop("bulkId"), str)
    assert body == {
        "messages": [
            {
                "destinations": [{"to": "41793026727", "messageId": "42"}],
                "from": "Acme",
                "text": "Hello from Tidings",
            },
            {
                "destinations": [{"to": "14155550100", "messageId": "43"}],
                "text": "Hello from Tidings",
            },
        ]
    }


async def test_infobip_body_carries_any_text_and_sender_exactly(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = infobip_ok
    channel = infobip_channel(gateway.url, batch_size=100)
    opened.append(channel)
    texts = ['Say "hi" \\ back', "line\nbreak\ttab\u0001", "Zoë 😀 €5 — ok", ""]
    batch = [sms(i, text=text, sender='Ac"me\\') for i, text in enumerate(texts, 1)]

    results = await channel.send(batch)

    assert list(results) == [Sent(str(i)) for i in range(1, len(texts) + 1)]
    (request,) = gateway.requests
    sent = request.json()["messages"]
    assert [m["text"] for m in sent] == texts
    assert {m["from"] for m in sent} == {'Ac"me\\'}


async def test_infobip_chunks_a_batch_and_maps_statuses_by_message_id(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda request: infobip_ok(request, rejected=frozenset({"137"}))
    channel = infobip_channel(gateway.url, batch_size=100)
    opened.append(channel)
    batch = [sms(i, to=f"+41790{i:06d}") for i in range(1, 251)]

    results = await channel.send(batch)

    assert [len(r.json()["messages"]) for r in gateway.requests] == [100, 100, 50]
    assert len({r.json()["bulkId"] for r in gateway.requests}) == 3
    sent = [r.json()["messages"] for r in gateway.requests]
    assert [m["destinations"][0]["messageId"] for chunk in sent for m in chunk] == [
        str(i) for i in range(1, 251)
    ]
    assert len(results) == 250
    for message, result in zip(batch, results, strict=True):
        if message.message_id == 137:
            reason = permanent(result).reason
            assert reason == "Infobip REJECTED: MISSING_TO (Missing destination.)"
        else:
            assert result == Sent(str(message.message_id))


async def test_infobip_http_errors_apply_to_their_own_request_only(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    def plan(request: Recorded) -> Reply:
        ids = [m["destinations"][0]["messageId"] for m in request.json()["messages"]]
        return Reply(500, "upstream down") if "3" in ids else infobip_ok(request)

    gateway.plan = plan
    channel = infobip_channel(gateway.url, batch_size=2)
    opened.append(channel)

    results = await channel.send([sms(1), sms(2), sms(3), sms(4), sms(5)])

    assert results[0] == Sent("1")
    assert results[1] == Sent("2")
    assert transient(results[2]).reason == "HTTP 500: upstream down"
    assert transient(results[3]).reason == "HTTP 500: upstream down"
    assert results[4] == Sent("5")


@pytest.mark.parametrize(
    "status",
    [
        {"groupName": "REJECTED", "name": "REJECTED_NOT_ENOUGH_CREDITS"},
        {"groupId": 5, "name": "REJECTED_NETWORK"},
        {"groupId": 2, "groupName": "UNDELIVERABLE", "name": "UNDELIVERABLE_NOT_DELIVERED"},
    ],
    ids=["group name only", "group id only", "undeliverable"],
)
async def test_infobip_failed_status_groups_are_permanent(
    gateway: Gateway, opened: list[AnyChannel], status: dict[str, Any]
) -> None:
    def plan(request: Recorded) -> Reply:
        reply = infobip_ok(request)
        for entry in reply.body["messages"]:
            if entry["messageId"] == "2":
                entry["status"] = status
        return reply

    gateway.plan = plan
    channel = infobip_channel(gateway.url, batch_size=10)
    opened.append(channel)

    results = await channel.send([sms(1), sms(2)])

    assert results[0] == Sent("1")
    assert permanent(results[1]).reason.endswith(status["name"])


async def test_infobip_message_missing_from_the_response_is_not_retried(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    def plan(request: Recorded) -> Reply:
        reply = infobip_ok(request)
        body = dict(reply.body)
        body["messages"] = [m for m in body["messages"] if m["messageId"] != "2"]
        return Reply(200, body)

    gateway.plan = plan
    channel = infobip_channel(gateway.url, batch_size=10)
    opened.append(channel)

    results = await channel.send([sms(1), sms(2), sms(3)])

    assert results[0] == Sent("1")
    assert "did not report this message" in permanent(results[1]).reason
    assert results[2] == Sent("3")


async def test_infobip_service_exception_is_the_reason(
    gateway: Gateway, opened: list[AnyChannel]
) -> None:
    error = {
        "requestError": {
            "serviceException": {
                "messageId": "UNAUTHORIZED",
                "text": f"Invalid login details for App {INFOBIP_KEY}",
            }
        }
    }
    gateway.plan = lambda _: Reply(401, error)
    channel = infobip_channel(gateway.url)
    opened.append(channel)

    results = await channel.send([sms(1), sms(2)])

    expected = "HTTP 401: UNAUTHORIZED: Invalid login details for App [redacted]"
    assert [permanent(r).reason for r in results] == [expected, expected]
