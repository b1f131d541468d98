"""The EHLO name, against a server that refuses a HELO that is not fully qualified, as
Postfix's `reject_non_fqdn_helo_hostname` does (an aiosmtpd handler on loopback)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.controller import AbortingController
from tidings.channels import smtp
from tidings.channels.base import Outgoing, Sent, TransientSendError
from tidings.channels.provider import ConnectionSpec
from tidings.db.engine import Database
from tidings.net import ssrf
from tidings.settings import Settings

HOST = "127.0.0.1"


class RejectNonFqdnHelo:
    """Postfix's rule, written independently of Tidings' own check: a HELO without a
    dot, or `localhost`, gets 504 5.5.2."""

    def __init__(self) -> None:
        self.helos: list[str] = []
        self.received: list[bytes] = []

    def _refusal(self, hostname: str) -> str | None:
        self.helos.append(hostname)
        if "." not in hostname.strip("[]") or hostname.lower().startswith("localhost"):
            return f"504 5.5.2 <{hostname}>: Helo command rejected: need fully-qualified hostname"
        return None

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str,
        responses: list[str],
    ) -> list[str]:  # fmt: skip
        refusal = self._refusal(hostname)
        if refusal is not None:
            return [refusal]
        session.host_name = hostname
        return responses

    async def handle_HELO(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str
    ) -> str:
        refusal = self._refusal(hostname)
        if refusal is not None:
            return refusal
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.received.append(bytes(cast(bytes, envelope.original_content)))
        return "250 2.0.0 Ok: queued as Q1"


@pytest.fixture
async def server() -> AsyncIterator[tuple[RejectNonFqdnHelo, int]]:
    handler = RejectNonFqdnHelo()
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = int(probe.getsockname()[1])
    controller = AbortingController(handler, hostname=HOST, port=port, server_hostname="mx.test")
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _mail() -> Outgoing:
    content = b"Message-ID: <m1@acme.example>\r\nSubject: hi\r\n\r\nHello\r\n"
    return Outgoing(1, 1, "email", "news@acme.example", "ada@example.com", "hi", content)


def _channel(port: int, *, helo_name: str | None = None, **settings: Any) -> smtp.SmtpChannel:
    """The channel `tidings worker` builds for a stored connection, under `settings`."""
    stored: dict[str, Any] = {"host": HOST, "port": port, "security": "none", "timeout": 5}
    if helo_name is not None:
        stored["helo_name"] = helo_name
    spec = ConnectionSpec(1, "smtp", stored, {}, 1, datetime.now(UTC))
    operator = Settings(outbound_allow="127.0.0.0/8", **settings)
    channel = smtp.PROVIDER.build(spec, cast(Database, SimpleNamespace(settings=operator)))
    assert isinstance(channel, smtp.SmtpChannel)
    return channel


async def _send(channel: smtp.SmtpChannel) -> Any:
    try:
        (result,) = await channel.send([_mail()])
    finally:
        await channel.close()
    return result


async def test_the_public_url_s_host_is_the_helo_by_default(
    server: tuple[RejectNonFqdnHelo, int],
) -> None:
    handler, port = server
    result = await _send(_channel(port, public_url="https://tidings.acme.example/"))
    assert isinstance(result, Sent), result
    assert handler.helos == ["tidings.acme.example"]
    assert len(handler.received) == 1


async def test_the_setting_then_the_connection_s_own_name_win(
    server: tuple[RejectNonFqdnHelo, int],
) -> None:
    handler, port = server
    public = "https://tidings.acme.example/"
    operator = {"public_url": public, "smtp_helo_name": "mail.acme.example"}
    assert isinstance(await _send(_channel(port, **operator)), Sent)
    own = _channel(port, helo_name="relay.acme.example", **operator)
    assert isinstance(await _send(own), Sent)
    assert handler.helos == ["mail.acme.example", "relay.acme.example"]


async def test_a_bare_machine_name_reaches_a_loopback_relay_which_may_refuse_it(
    server: tuple[RejectNonFqdnHelo, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without a fully qualified name anywhere, the machine's name is used, and only a
    server on loopback gets it (a local relay): this one refuses it, as Postfix would."""
    handler, port = server
    monkeypatch.setattr(socket, "getfqdn", lambda: "worker7")
    result = await _send(_channel(port))
    assert isinstance(result, TransientSendError)
    assert "504" in result.reason
    assert handler.helos[0] == "worker7"
    assert handler.received == []


async def test_a_bare_name_is_never_given_to_a_server_off_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The name resolves off loopback (a resolver stand-in: nothing is looked up, and
    the connection is never opened): every message waits, retried no sooner than the
    push-back, with a reason that says how to set the name."""
    monkeypatch.setattr(socket, "getfqdn", lambda: "localhost")

    async def remote(host: str, port: int) -> list[str]:
        return ["192.0.2.10"]  # TEST-NET-1: documentation only

    async def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must not connect")

    monkeypatch.setattr(ssrf, "system_resolver", remote)
    monkeypatch.setattr(smtp, "open_connection", never)
    settings = smtp.SmtpSettings("mx.remote.test", 25, security="none", pushback_seconds=60)
    channel = smtp.SmtpChannel(settings, policy=ssrf.OutboundPolicy.parse("192.0.2.0/24"))
    results = await channel.send([_mail(), _mail()])
    await channel.close()
    assert len(results) == 2
    for result in results:
        assert isinstance(result, TransientSendError)
        assert result.retry_after == 60
        assert result.reason.startswith("not sent: the HELO name 'localhost' is not a fully")
        assert "TIDINGS_SMTP_HELO_NAME" in result.reason


def test_the_setting_is_checked_when_the_process_starts() -> None:
    with pytest.raises(ValueError, match="fully qualified domain name"):
        Settings(smtp_helo_name="localhost")
    assert Settings(smtp_helo_name="mail.acme.example.").smtp_helo == "mail.acme.example"
    assert Settings(public_url="http://127.0.0.1:8000").smtp_helo is None
