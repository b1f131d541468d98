"""The fakes of `tidings.testing` themselves: other tests trust them to behave as said."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from tidings.channels.base import (
    Channel,
    Outgoing,
    PermanentSendError,
    Sent,
    TransientSendError,
)
from tidings.channels.http_sms import HttpSmsChannel, HttpSmsSettings
from tidings.channels.infobip import InfobipChannel, InfobipSettings
from tidings.channels.kannel import KannelChannel, KannelSettings
from tidings.channels.twilio import TwilioChannel, TwilioSettings
from tidings.db.base import utcnow
from tidings.testing import (
    INFOBIP_PENDING,
    Clock,
    Gateway,
    Recorded,
    RecordingChannel,
    Reply,
    answers,
    http_sms_ok,
    infobip_ok,
    kannel_ok,
    raising,
    twilio_ok,
)

T0 = datetime(2027, 1, 15, 8, tzinfo=UTC)


# ── Clock ───────────────────────────────────────────────────────────────────────────


def test_a_clock_stands_still_until_moved() -> None:
    clock = Clock(T0)

    assert clock() == clock() == clock.now == clock.start == T0
    assert clock.epoch() == 1_800_000_000.0
    assert clock.elapsed == 0.0


def test_a_clock_moves_by_advance_now_and_elapsed() -> None:
    clock = Clock(T0)

    clock.advance(1.5)
    assert clock() == T0 + timedelta(seconds=1.5)
    clock.advance(timedelta(minutes=1))
    assert clock.elapsed == 61.5
    assert clock.epoch() == 1_800_000_061.5
    clock.now = T0 + timedelta(hours=1)
    assert clock.elapsed == 3600.0
    clock.elapsed = 0.0625
    assert clock() == T0 + timedelta(microseconds=62_500)
    assert clock.start == T0


def test_a_clock_starts_at_the_wall_clock_by_default() -> None:
    before = utcnow()
    clock = Clock()
    assert before <= clock() <= utcnow()
    assert clock().tzinfo is not None


def test_a_clock_keeps_the_instant_it_is_given_in_any_zone() -> None:
    zurich = datetime(2027, 1, 15, 9, tzinfo=timezone(timedelta(hours=1)))
    assert Clock(zurich).epoch() == Clock(T0).epoch()


def test_a_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        Clock(datetime(2027, 1, 15, 8))
    clock = Clock(T0)
    with pytest.raises(ValueError, match="naive"):
        clock.now = datetime(2027, 1, 15, 9)
    assert clock() == T0


# ── RecordingChannel ────────────────────────────────────────────────────────────────


def _email(message_id: int, to: str) -> Outgoing:
    return Outgoing(message_id, 1, "email", "a@acme.example", to, "Hi", b"MIME")


BATCH = [_email(1, "a@example.com"), _email(2, "b@example.com"), _email(3, "c@example.com")]


async def test_a_recording_channel_records_and_sends_by_default() -> None:
    channel: Channel = RecordingChannel()
    assert isinstance(channel, RecordingChannel)

    assert await channel.send(BATCH[:2]) == [Sent("recorded-1"), Sent("recorded-2")]
    assert await channel.send(BATCH[2:]) == [Sent("recorded-3")]
    assert await channel.send([]) == []

    assert channel.messages == BATCH
    assert channel.batches == [BATCH[:2], BATCH[2:], []]
    assert not channel.closed
    await channel.close()
    assert channel.closed


async def test_a_recording_channel_answers_per_recipient() -> None:
    bounced = PermanentSendError("550 5.1.1 no such user")
    later = TransientSendError("421 try later", retry_after=30)
    channel = RecordingChannel(answers({"b@example.com": bounced, "c@example.com": later}))

    assert await channel.send(BATCH) == [Sent("recorded-1"), bounced, later]


async def test_a_recording_channel_raises_for_one_recipient_or_every_batch() -> None:
    reset = ConnectionResetError("reset by peer")
    channel = RecordingChannel(raising(reset, recipient="c@example.com"))
    assert await channel.send(BATCH[:2]) == [Sent("recorded-1"), Sent("recorded-2")]
    with pytest.raises(ConnectionResetError):
        await channel.send(BATCH)
    assert channel.messages == BATCH[:2] + BATCH  # a failed batch was still handed over

    down = TransientSendError("connection refused")
    everything = RecordingChannel(raising(down))
    with pytest.raises(TransientSendError):
        await everything.send(BATCH[:1])
    assert everything.messages == BATCH[:1]


async def test_a_recording_channel_rule_may_be_any_function() -> None:
    channel = RecordingChannel(lambda m: Sent(f"id-{m.recipient}"))
    assert await channel.send(BATCH[:1]) == [Sent("id-a@example.com")]


def test_a_recording_channel_says_what_a_real_one_would() -> None:
    assert (RecordingChannel.parallelism, RecordingChannel.messages_per_request) == (None, 1)
    assert (RecordingChannel().parallelism, RecordingChannel().messages_per_request) == (None, 1)
    like_infobip = RecordingChannel(messages_per_request=100)
    like_smtp = RecordingChannel(parallelism=4)
    assert (like_infobip.messages_per_request, like_smtp.parallelism) == (100, 4)


# ── Gateway and the providers' answers, in process ─────────────────────────────────


def _sms(message_id: int, to: str = "+41793026727") -> Outgoing:
    return Outgoing(message_id, 1, "sms", "Acme", to, None, "Hello", segments=1)


def _client(gateway: Gateway) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=gateway.transport())


async def test_a_gateway_transport_records_and_answers_per_its_plan() -> None:
    gateway = Gateway()
    gateway.plan = lambda request: Reply(418, {"path": request.path}, {"X-Seen": request.method})
    async with _client(gateway) as client:
        response = await client.post("http://gw.test/send?to=%2B41&to=x", data={"a": "1 2"})

    assert (response.status_code, response.json()) == (418, {"path": "/send"})
    assert response.headers["x-seen"] == "POST"
    assert response.headers["content-type"] == "application/json"
    (request,) = gateway.requests
    assert (request.method, request.target, request.connection) == (
        "POST",
        "/send?to=%2B41&to=x",
        0,
    )
    assert request.query == {"to": ["+41", "x"]}
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert request.form() == {"a": "1 2"}
    assert gateway.connections == 0


async def test_a_gateway_answers_200_and_nothing_by_default() -> None:
    async with _client(Gateway()) as client:
        response = await client.get("http://gw.test/")
    assert (response.status_code, response.content) == (200, b"")


async def test_a_gateway_plan_may_be_async() -> None:
    async def plan(request: Recorded) -> Reply:
        return Reply(201, "made")

    gateway = Gateway()
    gateway.plan = plan
    async with _client(gateway) as client:
        response = await client.put("http://gw.test/x", content=b"\x00\x01")
    assert (response.status_code, response.text) == (201, "made")
    assert gateway.requests[0].body == b"\x00\x01"


async def test_http_sms_ok_is_read_as_the_gateways_id() -> None:
    gateway = Gateway()
    gateway.plan = http_sms_ok
    settings = HttpSmsSettings(
        url="http://gw.test/send", body={"ref": "{message_id}"}, id_path="messages.0.id"
    )
    async with _client(gateway) as client:
        results = await HttpSmsChannel(settings, client=client).send([_sms(7)])
    assert results == [Sent("gw-7")]


async def test_kannel_ok_is_read_as_accepted() -> None:
    gateway = Gateway()
    gateway.plan = kannel_ok
    settings = KannelSettings(base_url="http://kannel.test", username="u", password="p")
    async with _client(gateway) as client:
        results = await KannelChannel(settings, client=client).send([_sms(7)])
    assert results == [Sent("kannel-7")]
    assert gateway.requests[0].path == "/cgi-bin/sendsms"


async def test_infobip_ok_is_read_message_by_message() -> None:
    gateway = Gateway()
    gateway.plan = lambda request: infobip_ok(request, rejected={"8"})
    settings = InfobipSettings(base_url="http://infobip.test", api_key="k")
    async with _client(gateway) as client:
        results = await InfobipChannel(settings, client=client).send([_sms(7), _sms(8), _sms(9)])

    assert results[0] == Sent("7")
    assert isinstance(results[1], PermanentSendError)
    assert results[1].reason == "Infobip REJECTED: MISSING_TO (Missing destination.)"
    assert results[2] == Sent("9")
    answered = json.loads(gateway.requests[0].body)["messages"]
    assert [m["destinations"][0]["messageId"] for m in answered] == ["7", "8", "9"]


async def test_infobip_ok_lists_in_reverse_and_leaves_its_statuses_alone() -> None:
    gateway = Gateway()
    gateway.plan = infobip_ok
    async with _client(gateway) as client:
        body = {
            "bulkId": "b-1",
            "messages": [
                {"destinations": [{"to": "41790000001", "messageId": "1"}], "text": "a"},
                {"destinations": [{"to": "41790000002", "messageId": "2"}], "text": "b"},
            ],
        }
        answer = (await client.post("http://infobip.test/sms/2/text/advanced", json=body)).json()
    assert answer["bulkId"] == "b-1"
    assert [(m["messageId"], m["to"]) for m in answer["messages"]] == [
        ("2", "41790000002"),
        ("1", "41790000001"),
    ]
    assert answer["messages"][0]["status"] == INFOBIP_PENDING
    reply = infobip_ok(gateway.requests[0])
    reply.body["messages"][0]["status"]["name"] = "CHANGED"
    assert INFOBIP_PENDING["name"] == "PENDING_ACCEPTED"


async def test_twilio_ok_is_a_created_message() -> None:
    gateway = Gateway()
    gateway.plan = twilio_ok
    sid = "AC" + "0" * 32
    numbered = TwilioSettings(
        account_sid=sid, auth_token="t", base_url="http://twilio.test", from_number="+15005550006"
    )
    serviced = TwilioSettings(
        account_sid=sid, auth_token="t", base_url="http://twilio.test", messaging_service_sid="MG1"
    )
    async with _client(gateway) as client:
        first = await TwilioChannel(numbered, client=client).send([_sms(1), _sms(2)])
        second = await TwilioChannel(serviced, client=client).send([_sms(3)])

    sids = [r.provider_id for r in [*first, *second] if isinstance(r, Sent)]
    assert len(sids) == len(set(sids)) == 3
    assert all(re.fullmatch(r"SM[0-9a-f]{32}", s) for s in sids)
    created = twilio_ok(gateway.requests[0]).body
    assert created["status"] == "queued"
    assert created["uri"] == f"/2010-04-01/Accounts/{sid}/Messages/{created['sid']}.json"
    assert (created["account_sid"], created["to"], created["from"]) == (sid, "+41793026727", "Acme")
    via_service = twilio_ok(gateway.requests[2]).body
    assert (via_service["status"], via_service["messaging_service_sid"]) == ("accepted", "MG1")
