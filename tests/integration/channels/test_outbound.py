"""The channels' side of the outbound rule (tidings.net.ssrf): each vets its host when it
connects and connects to the vetted address; a refused address sends nothing; a
redirect is not followed; and what a tenant reads of a failed connection does not tell
an open port from a closed one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.support.outbound import LOOPBACK
from tests.support.sms_channels import http_sms_channel, permanent, sms, transient
from tidings.channels.base import Outgoing, TransientSendError
from tidings.channels.http_common import NO_ANSWER
from tidings.channels.http_sms import HttpSmsChannel, HttpSmsSettings
from tidings.channels.smtp import SmtpChannel, SmtpSettings
from tidings.net.ssrf import STRICT
from tidings.testing import Gateway, Reply

HOST = "127.0.0.1"
REFUSED = "refused: 127.0.0.1 is loopback; the operator may allow it in TIDINGS_OUTBOUND_ALLOW"


def _mail(n: int) -> Outgoing:
    content = f"Message-ID: <m{n}@tidings.test>\r\nSubject: hi\r\n\r\nHello\r\n".encode()
    return Outgoing(n, 1, "email", "news@tidings.test", f"u{n}@example.test", "hi", content)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def listener() -> AsyncIterator[Callable[[Answer], Awaitable[int]]]:
    """Servers on loopback that answer a connection as told; their port."""
    servers: list[asyncio.Server] = []
    held: list[asyncio.StreamWriter] = []

    async def start(answer: Answer) -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            held.append(writer)
            await answer(reader, writer)

        server = await asyncio.start_server(handle, HOST, 0)
        servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    yield start
    for writer in held:
        writer.close()
    for server in servers:
        server.close()
        await server.wait_closed()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # an open port that never speaks (an HTTP server waits like this)


async def _garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    await writer.drain()


async def _refusing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"554 5.3.2 internal admin service, go away\r\n")
    await writer.drain()


async def test_smtp_open_and_closed_ports_read_the_same_to_the_tenant(
    listener: Callable[[Answer], Awaitable[int]], caplog: pytest.LogCaptureFixture
) -> None:
    ports = {
        "closed": _closed_port(),
        "silent": await listener(_silent),
        "garbage": await listener(_garbage),
        "refusing": await listener(_refusing),
    }
    reasons = {}
    for name, port in ports.items():
        settings = SmtpSettings(HOST, port, security="none", timeout=0.3, helo_name="t.test")
        channel = SmtpChannel(settings, policy=LOOPBACK)
        try:
            (result,) = await channel.send([_mail(1)])
        finally:
            await channel.close()
        assert isinstance(result, TransientSendError), (name, result)
        reasons[name] = result.reason.replace(str(port), "PORT")

    assert set(reasons.values()) == {f"could not connect to the SMTP server at {HOST}:PORT"}
    assert "go away" in caplog.text  # the operator's log keeps the cause
    assert "SSH-2.0" in caplog.text


async def test_smtp_refused_by_the_policy_connects_to_nothing(
    listener: Callable[[Answer], Awaitable[int]],
) -> None:
    connected: list[int] = []

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.append(1)

    port = await listener(count)
    channel = SmtpChannel(SmtpSettings(HOST, port, security="none"), policy=STRICT)
    try:
        results = await channel.send([_mail(1), _mail(2)])
    finally:
        await channel.close()

    assert [permanent(r).reason for r in results] == [REFUSED, REFUSED]
    await asyncio.sleep(0)
    assert connected == []


async def test_smtp_connects_to_the_addresses_its_name_was_vetted_to(
    listener: Callable[[Answer], Awaitable[int]],
) -> None:
    """`localhost` is resolved and vetted, and the connection goes to a vetted address (the
    name stays what TLS would check)."""
    greeted: list[int] = []

    async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        greeted.append(1)
        writer.write(b"554 no service\r\n")
        await writer.drain()

    port = await listener(smtp)
    settings = SmtpSettings("localhost", port, security="none", timeout=1)
    channel = SmtpChannel(settings, policy=LOOPBACK)
    try:
        (result,) = await channel.send([_mail(1)])
    finally:
        await channel.close()

    assert transient(result).reason == f"could not connect to the SMTP server at localhost:{port}"
    assert greeted == [1]


async def test_an_http_gateway_refused_by_the_policy_gets_no_connection(gateway: Gateway) -> None:
    channel = http_sms_channel(gateway.url)  # built with loopback open …
    strict = HttpSmsChannel(channel.settings, policy=STRICT)  # … and without
    try:
        (result,) = await strict.send([sms(1)])
    finally:
        await channel.close()
        await strict.close()

    assert permanent(result).reason == REFUSED
    assert (gateway.connections, gateway.requests) == (0, [])


async def test_an_http_gateway_redirect_is_not_followed(gateway: Gateway) -> None:
    gateway.plan = lambda _: Reply(302, headers={"Location": "http://169.254.169.254/latest/"})
    channel = HttpSmsChannel(
        HttpSmsSettings(url=f"{gateway.url}/send", body={"to": "{to}"}), policy=LOOPBACK
    )
    try:
        (result,) = await channel.send([sms(1)])
    finally:
        await channel.close()

    assert permanent(result).reason.startswith("HTTP 302")
    assert [r.path for r in gateway.requests] == ["/send"]


async def test_an_http_gateway_closed_or_silent_reads_the_same(
    listener: Callable[[Answer], Awaitable[int]],
) -> None:
    silent = await listener(_silent)
    garbage = await listener(_garbage)
    reasons = []
    for port in (_closed_port(), silent, garbage):
        channel = http_sms_channel(f"http://{HOST}:{port}")
        channel.client.timeout = type(channel.client.timeout)(0.3)
        try:
            (result,) = await channel.send([sms(1)])
        finally:
            await channel.close()
        reasons.append(transient(result).reason)
    assert reasons == [NO_ANSWER] * 3
