"""What every HTTP SMS provider does alike, checked on all four against a real HTTP/1.1
gateway on loopback: status classification, connection reuse, refused connections and
timeouts, secrets kept out of reasons and reprs.

Each test gets its own `Gateway` (`tidings.testing`), which records every request and
answers per the test's `plan`; each provider's own request shape and response reading
are checked in its own file (test_http_sms.py, test_kannel.py, test_infobip.py,
test_twilio.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tests.support.sms_channels import (
    HTTP_TOKEN,
    INFOBIP_KEY,
    KANNEL_PASSWORD,
    TWILIO_SID,
    TWILIO_TOKEN,
    AnyChannel,
    http_sms_channel,
    infobip_channel,
    kannel_channel,
    permanent,
    sms,
    transient,
    twilio_channel,
)
from tidings.channels.base import Sent
from tidings.channels.http_common import NO_ANSWER
from tidings.channels.http_sms import HttpSmsSettings
from tidings.channels.infobip import InfobipSettings
from tidings.channels.kannel import KannelSettings
from tidings.channels.twilio import TwilioSettings
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


@pytest.fixture
def refused_url() -> str:
    """A loopback URL nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


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
    provider: Provider, refused_url: str, opened: list[AnyChannel], caplog: pytest.LogCaptureFixture
) -> None:
    channel = channel_for(provider, refused_url, opened)

    results = await channel.send([sms(i) for i in range(1, 6)])

    assert len(results) == 5
    for result in results:
        assert transient(result).reason == NO_ANSWER  # the same as a silent open port's
    assert "ConnectError" in caplog.text  # the cause, for the operator


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

    assert transient(results[0]).reason == NO_ANSWER  # the same as a closed port's


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
