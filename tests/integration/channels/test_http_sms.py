"""The HTTP SMS channels against a real HTTP/1.1 gateway on loopback.

Each test gets its own `Gateway` (`tidings.testing`), which records every request and
answers per the test's `plan`.

The first half runs the same checks against all four providers (status classification,
connection reuse, refused connections, secrets); the second half checks each provider's
request shape and response reading.
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    Result,
    Sent,
    TransientSendError,
)
from tidings.channels.http_sms import HttpSmsChannel, HttpSmsSettings
from tidings.channels.infobip import InfobipChannel, InfobipSettings
from tidings.channels.kannel import KannelChannel, KannelSettings
from tidings.channels.twilio import TwilioChannel, TwilioSettings
from tidings.testing import (
    Gateway,
    Plan,
    Recorded,
    Reply,
    http_sms_ok,
    infobip_ok,
    kannel_ok,
    twilio_ok,
)

AnyChannel = HttpSmsChannel | KannelChannel | InfobipChannel | TwilioChannel


@pytest.fixture
async def opened(gateway: Gateway) -> AsyncIterator[list[AnyChannel]]:
    """Channels to close after the test (before the gateway stops: it depends on it)."""
    channels: list[AnyChannel] = []
    yield channels
    for channel in channels:
        await channel.close()


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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


# ── the providers, as the shared tests see them ─────────────────────────────────────

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
    return HttpSmsChannel(settings, client=client, max_concurrency=max_concurrency)


def kannel_channel(
    url: str, *, client: httpx.AsyncClient | None = None, max_concurrency: int = 10
) -> KannelChannel:
    settings = KannelSettings(
        base_url=url, username="tidings", password=KANNEL_PASSWORD, dlr_url=DLR_URL
    )
    return KannelChannel(settings, client=client, max_concurrency=max_concurrency)


def infobip_channel(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    max_concurrency: int = 10,
    batch_size: int = 2,  # small, so the shared tests make several requests
) -> InfobipChannel:
    settings = InfobipSettings(base_url=url, api_key=INFOBIP_KEY, batch_size=batch_size)
    return InfobipChannel(settings, client=client, max_concurrency=max_concurrency)


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
    return TwilioChannel(settings, client=client, max_concurrency=max_concurrency)


@dataclass(frozen=True)
class Provider:
    name: str
    build: Callable[..., AnyChannel]
    ok: Plan
    secret: str
    requests_per_message: float


PROVIDERS = [
    Provider("http_sms", http_sms_channel, http_sms_ok, HTTP_TOKEN, 1),
    Provider("kannel", kannel_channel, kannel_ok, KANNEL_PASSWORD, 1),
    Provider("infobip", infobip_channel, infobip_ok, INFOBIP_KEY, 0.5),
    Provider("twilio", twilio_channel, twilio_ok, TWILIO_TOKEN, 1),
]


@pytest.fixture(params=PROVIDERS, ids=[p.name for p in PROVIDERS])
def provider(request: pytest.FixtureRequest) -> Provider:
    chosen: Provider = request.param
    return chosen


def channel_for(
    provider: Provider, url: str, opened: list[AnyChannel], **kwargs: Any
) -> AnyChannel:
    channel = provider.build(url, **kwargs)
    opened.append(channel)
    return channel


# ── every provider ──────────────────────────────────────────────────────────────────


async def test_success_is_sent_and_keeps_input_order(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = provider.ok
    channel = channel_for(provider, gateway.url, opened)
    batch = [sms(i, to=f"+4179302{i:04d}") for i in range(1, 7)]

    results = await channel.send(batch)

    assert len(results) == len(batch)
    assert all(isinstance(r, Sent) for r in results), results
    ids = [r.provider_id for r in results if isinstance(r, Sent)]
    assert len(set(ids)) == len(ids)
    assert len(gateway.requests) == len(batch) * provider.requests_per_message


async def test_connections_are_reused(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = provider.ok
    channel = channel_for(provider, gateway.url, opened, max_concurrency=2)

    results = await channel.send([sms(i) for i in range(1, 13)])

    assert all(isinstance(r, Sent) for r in results), results
    assert len(gateway.requests) >= 6
    assert gateway.connections <= 2 < len(gateway.requests)


async def test_an_empty_batch_sends_nothing(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel]
) -> None:
    channel = channel_for(provider, gateway.url, opened)

    assert list(await channel.send([])) == []
    assert gateway.requests == []


async def test_429_is_transient_with_retry_after_seconds(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(429, {"error": "slow down"}, {"Retry-After": "7"})
    channel = channel_for(provider, gateway.url, opened)

    results = await channel.send([sms(1), sms(2)])

    assert [transient(r).retry_after for r in results] == [7.0, 7.0]
    assert "429" in transient(results[0]).reason


# RFC 9110 §5.6.7: IMF-fixdate, and the obsolete asctime form recipients must accept.
@pytest.mark.parametrize(
    "form",
    [lambda t: format_datetime(t, usegmt=True), lambda t: t.strftime("%a %b %d %H:%M:%S %Y")],
    ids=["imf-fixdate", "asctime"],
)
async def test_retry_after_may_be_an_http_date(
    provider: Provider,
    gateway: Gateway,
    opened: list[AnyChannel],
    form: Callable[[datetime], str],
) -> None:
    when = form(datetime.now(UTC) + timedelta(seconds=30))
    gateway.plan = lambda _: Reply(429, "busy", {"Retry-After": when})
    channel = channel_for(provider, gateway.url, opened)

    (result,) = await channel.send([sms(1)])

    wait = transient(result).retry_after
    assert wait is not None
    assert 25 <= wait <= 30  # the date has whole seconds; the clock moved a little


@pytest.mark.parametrize("status", [408, 500, 502, 503])
async def test_server_errors_and_request_timeout_are_transient(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel], status: int
) -> None:
    gateway.plan = lambda _: Reply(status, "Temporal failure, try again later.")
    channel = channel_for(provider, gateway.url, opened)

    results = await channel.send([sms(1), sms(2), sms(3)])

    assert all(f"HTTP {status}" in transient(r).reason for r in results)
    assert all(transient(r).retry_after is None for r in results)


async def test_400_is_permanent_and_the_reason_hides_the_secret(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel]
) -> None:
    # A gateway that echoes the whole request, credentials included, in its error.
    def echo(request: Recorded) -> Reply:
        echoed = f"{request.target} {request.headers} {request.body.decode()}"
        return Reply(400, f"bad request, credential={provider.secret} {echoed}")

    gateway.plan = echo
    channel = channel_for(provider, gateway.url, opened)

    results = await channel.send([sms(1), sms(2)])

    for result in results:
        reason = permanent(result).reason
        assert reason.startswith("HTTP 400: bad request")
        assert provider.secret not in reason
        assert "[redacted]" in reason
        assert len(reason) < 300


async def test_other_4xx_are_permanent(
    provider: Provider, gateway: Gateway, opened: list[AnyChannel]
) -> None:
    gateway.plan = lambda _: Reply(404, "Not Found")
    channel = channel_for(provider, gateway.url, opened)

    (result,) = await channel.send([sms(1)])

    assert permanent(result).reason == "HTTP 404: Not Found"


async def test_a_refused_connection_is_transient_for_every_message(
    provider: Provider, refused_url: str, opened: list[AnyChannel]
) -> None:
    channel = channel_for(provider, refused_url, opened)

    results = await channel.send([sms(i) for i in range(1, 6)])

    assert len(results) == 5
    for result in results:
        assert "ConnectError" in transient(result).reason


async def test_a_gateway_that_does_not_answer_times_out_transiently(
    provider: Provider, gateway: Gateway
) -> None:
    async def never(_: Recorded) -> Reply:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    gateway.plan = never
    async with httpx.AsyncClient(timeout=0.2) as client:
        channel = provider.build(gateway.url, client=client)
        results = await channel.send([sms(1)])
        await channel.close()  # does not close an injected client
        assert not client.is_closed

    assert "ReadTimeout" in transient(results[0]).reason


async def test_close_closes_the_channels_own_client(provider: Provider, gateway: Gateway) -> None:
    channel = provider.build(gateway.url)

    await channel.close()

    assert channel.client.is_closed


@pytest.mark.parametrize(
    ("settings", "secret"),
    [
        (
            HttpSmsSettings(
                url="https://sms.example/send",
                body={"key": "in-body-secret", "to": "{to}"},
                headers={"Authorization": f"Bearer {HTTP_TOKEN}"},
            ),
            HTTP_TOKEN,
        ),
        (
            HttpSmsSettings(url="https://sms.example/send", body={"key": "in-body-secret"}),
            "in-body-secret",
        ),
        (KannelSettings(base_url="http://k", username="u", password=KANNEL_PASSWORD), "p@ss"),
        (InfobipSettings(base_url="https://x.api.infobip.com", api_key=INFOBIP_KEY), INFOBIP_KEY),
        (TwilioSettings(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN), TWILIO_TOKEN),
    ],
    ids=["http_sms header", "http_sms body", "kannel", "infobip", "twilio"],
)
def test_settings_repr_leaves_credentials_out(settings: object, secret: str) -> None:
    assert secret not in repr(settings)


# ── the generic JSON gateway ────────────────────────────────────────────────────────


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
    channel = HttpSmsChannel(settings)
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
    channel = HttpSmsChannel(settings)
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
    channel = HttpSmsChannel(HttpSmsSettings(url=gateway.url, body={"to": "{to}"}))
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
    channel = HttpSmsChannel(settings)
    opened.append(channel)

    (result,) = await channel.send([sms(1)])

    assert permanent(result).reason == "HTTP 401: unknown api_key [redacted]"


# ── Kannel ──────────────────────────────────────────────────────────────────────────


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
    channel = KannelChannel(settings)
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


# ── Infobip ─────────────────────────────────────────────────────────────────────────


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


# ── Twilio ──────────────────────────────────────────────────────────────────────────


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
