"""The SMTP channel against a real aiosmtpd server on loopback.

Each test starts its own server (aiosmtpd runs it in a thread) around a `Recorder`, which
accepts mail, remembers what arrived on which connection, and plays scripted faults.
Connections are told apart by the client's address and port (`peer`).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
import threading
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.support.controller import AbortingController
from tests.support.outbound import LOOPBACK
from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    Result,
    Sent,
    TransientSendError,
)
from tidings.channels.smtp import SmtpChannel, SmtpSettings
from tidings.content import mime

HOST = "127.0.0.1"
SENDER = "news@tidings.test"
USER, PASSWORD = "tidings", "s3cret"

Peer = tuple[str, int]

# Fault actions besides a reply line; None in a fault queue means "behave normally".
HANG = "<hang>"  # never answer, so that the client's timeout fires
DROP = "<drop>"  # close the connection without answering
STOP = "<stop>"  # stop listening, then drop: the server goes away mid-batch


@dataclass(frozen=True)
class Delivery:
    peer: Peer
    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes
    queue_id: str
    tls: bool


class Recorder:
    """An aiosmtpd handler. `faults[command]` holds what to do, in turn, at the next MAIL,
    RCPT or DATA (a reply line or an action above); `data_reply` replaces the default
    "queued as" answer to DATA; with `require_auth`, MAIL before AUTH gets 530. With
    `pipelining` EHLO offers PIPELINING (aiosmtpd reads commands in order either way)."""

    def __init__(self, *, data_reply: str | None = None, require_auth: bool = False) -> None:
        self.data_reply = data_reply
        self.require_auth = require_auth
        self.faults: defaultdict[str, deque[str | None]] = defaultdict(deque)
        self.deliveries: list[Delivery] = []
        self.greeted: list[Peer] = []  # one entry per EHLO
        self.resets: list[Peer] = []
        self.quits: list[Peer] = []
        self.logins: list[tuple[str, bytes]] = []
        self.connections: dict[Peer, SMTP] = {}
        self.controller: AbortingController | None = None
        self.pipelining = False

    async def _fault(self, server: SMTP, command: str) -> str | None:
        queue = self.faults[command]
        action = queue.popleft() if queue else None
        if action == STOP:
            assert self.controller is not None
            assert self.controller.server is not None
            self.controller.server.close()  # we run on the server's loop
            action = DROP
        if action == DROP:
            assert server.transport is not None
            server.transport.close()
        if action in (DROP, HANG):
            await asyncio.Event().wait()  # cancelled when the connection goes
        return action

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        self.greeted.append(_peer(session))
        self.connections[_peer(session)] = server
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")  # the last line is "250 HELP"
        return responses

    async def handle_MAIL(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        if fault := await self._fault(server, "MAIL"):
            return fault
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if fault := await self._fault(server, "RCPT"):
            return fault
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if fault := await self._fault(server, "DATA"):
            return fault
        assert envelope.mail_from is not None
        assert envelope.original_content is not None
        assert server.transport is not None
        queue_id = f"Q{len(self.deliveries):04d}"
        self.deliveries.append(
            Delivery(
                peer=_peer(session),
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                content=envelope.original_content,
                queue_id=queue_id,
                tls=server.transport.get_extra_info("ssl_object") is not None,
            )
        )
        return self.data_reply or f"250 2.0.0 Ok: queued as {queue_id}"

    async def handle_RSET(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.resets.append(_peer(session))
        return "250 OK"

    async def handle_QUIT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.quits.append(_peer(session))
        return "221 Bye"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((mechanism, data.login))
        ok = (data.login, data.password) == (USER.encode(), PASSWORD.encode())
        return AuthResult(success=ok, handled=False)


def _peer(session: Session) -> Peer:
    return cast(Peer, session.peer)  # typed as a str, but (host, port) on IPv4


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def _message(i: int, *, recipient: str | None = None) -> Outgoing:
    to = recipient or f"user{i}@example.test"
    content = mime.build(
        mime.Email(
            sender=mime.Address(SENDER, "Tidings News"),
            to=mime.Address(to),
            subject=f"Issue {i}",
            # A line holding one dot would end DATA early without dot-stuffing.
            text=f"Hello {i}\n.\n..two dots\n",
            html=None,
            message_id=f"m{i}.abc@tidings.test",
            date=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
        )
    )
    return Outgoing(
        message_id=i,
        org_id=1,
        channel="email",
        sender=SENDER,
        recipient=to,
        subject=f"Issue {i}",
        content=content,
    )


def _batch(start: int, stop: int) -> list[Outgoing]:
    return [_message(i) for i in range(start, stop)]


def _assert_sent(handler: Recorder, batch: Sequence[Outgoing], results: Sequence[Result]) -> None:
    """Every message of `batch` arrived exactly once, intact, and its result, in order,
    carries the queue id the server gave it."""
    counts = Counter(d.rcpt_tos for d in handler.deliveries)
    by_recipient = {d.rcpt_tos: d for d in handler.deliveries}
    assert len(results) == len(batch)
    for message, result in zip(batch, results, strict=True):
        assert counts[(message.recipient,)] == 1, message.recipient
        delivery = by_recipient[(message.recipient,)]
        assert delivery.mail_from == message.sender
        assert delivery.content == message.content
        assert result == Sent(delivery.queue_id)


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def serve(request: pytest.FixtureRequest) -> Iterator[Callable[..., int]]:
    """Start an aiosmtpd server around a handler, with extra keywords for aiosmtpd's
    SMTP (or `ssl_context` for implicit TLS); returns its port. Stopped at teardown.
    Every test runs twice: with a server that offers PIPELINING and one that does not."""
    controllers: list[AbortingController] = []

    def start(handler: Recorder, **options: Any) -> int:
        handler.pipelining = request.param
        controller = AbortingController(
            handler, hostname=HOST, port=_free_port(), server_hostname="mx.test", **options
        )
        controller.start()
        controllers.append(controller)
        handler.controller = controller
        return controller.port

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
async def channel_for(serve: Callable[..., int]) -> AsyncIterator[Callable[..., SmtpChannel]]:
    """Make SMTP channels to loopback (plain SMTP unless told otherwise). They are closed
    at teardown, before the servers stop (this fixture depends on `serve`)."""
    made: list[SmtpChannel] = []

    def make(port: int, **settings: Any) -> SmtpChannel:
        options: dict[str, Any] = {"security": "none", "helo_name": "client.test", **settings}
        channel = SmtpChannel(SmtpSettings(HOST, port, **options), policy=LOOPBACK)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, as (cert, key) PEM files."""
    # The `cryptography` package is not installed here; the openssl command does the same.
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("TLS tests need the openssl command to make a self-signed certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    request = (
        "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1"
        " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    subprocess.run(
        [openssl, *request.split(), "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


# --- delivery and the pool ---------------------------------------------------------------


async def test_a_big_batch_arrives_whole_over_a_pool_of_reused_connections(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()
    channel = channel_for(serve(handler), pool_size=4)

    first = _batch(0, 200)
    _assert_sent(handler, first, await channel.send(first))
    peers = set(handler.greeted)
    assert len(peers) == 4  # the batch was spread over the whole pool, and no further
    assert {d.peer for d in handler.deliveries} == peers

    second = _batch(200, 400)
    _assert_sent(handler, second, await channel.send(second))
    assert len(handler.greeted) == 4  # no new connection, not even a new EHLO
    assert {d.peer for d in handler.deliveries[200:]} == peers
    assert handler.resets == []

    await channel.close()
    assert sorted(handler.quits) == sorted(peers)
    closed = await channel.send(_batch(400, 401))
    assert isinstance(closed[0], TransientSendError)


async def test_concurrent_sends_share_the_pool_and_its_limit(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()
    channel = channel_for(serve(handler), pool_size=2)
    batches = [_batch(0, 20), _batch(20, 40), _batch(40, 60)]

    results = await asyncio.gather(*(channel.send(batch) for batch in batches))

    for batch, result in zip(batches, results, strict=True):
        _assert_sent(handler, batch, result)
    assert len(set(handler.greeted)) == 2


async def test_an_empty_batch_opens_no_connection(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()
    channel = channel_for(serve(handler))
    assert await channel.send([]) == []
    assert handler.greeted == []


@pytest.mark.parametrize(
    ("data_reply", "provider_id"),
    [
        ("250 2.0.0 Ok: queued as 4XyZ12", "4XyZ12"),
        ("250 OK id=1rAbCd-0001Xy-Zz", "1rAbCd-0001Xy-Zz"),
        ("250 OK", "m7.abc@tidings.test"),  # no queue id: the Message-ID header
    ],
)
async def test_the_provider_id_is_the_queue_id_else_the_message_id(
    serve: Callable[..., int],
    channel_for: Callable[..., SmtpChannel],
    data_reply: str,
    provider_id: str,
) -> None:
    channel = channel_for(serve(Recorder(data_reply=data_reply)))
    assert await channel.send([_message(7)]) == [Sent(provider_id)]


# --- refused transactions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "reply", "stage"),
    [
        ("MAIL", "451 4.3.0 Try again later", "MAIL FROM"),
        ("RCPT", "450 4.2.1 Mailbox busy", "RCPT TO"),
        ("RCPT", "452 4.5.3 Too many recipients", "RCPT TO"),
        ("DATA", "451 4.3.0 Try again later", "DATA"),
    ],
)
async def test_a_4xx_reply_is_transient_and_sending_again_succeeds(
    serve: Callable[..., int],
    channel_for: Callable[..., SmtpChannel],
    command: str,
    reply: str,
    stage: str,
) -> None:
    handler = Recorder()
    handler.faults[command].append(reply)
    channel = channel_for(serve(handler), pool_size=1)
    batch = _batch(0, 3)

    results = await channel.send(batch)

    assert isinstance(results[0], TransientSendError)
    assert results[0].reason == f"{stage}: {reply}"
    _assert_sent(handler, batch[1:], results[1:])
    assert handler.resets == _resets_after_refusal(handler, stage)
    _assert_sent(handler, batch[:1], await channel.send(batch[:1]))
    assert len(handler.greeted) == 1


@pytest.mark.parametrize(
    ("command", "reply", "stage"),
    [
        ("MAIL", "553 5.1.8 Sender domain rejected", "MAIL FROM"),
        ("RCPT", "550 5.1.1 No such user", "RCPT TO"),
        ("DATA", "554 5.7.1 Message refused", "DATA"),
    ],
)
async def test_a_5xx_reply_is_permanent_and_the_connection_goes_on(
    serve: Callable[..., int],
    channel_for: Callable[..., SmtpChannel],
    command: str,
    reply: str,
    stage: str,
) -> None:
    handler = Recorder()
    channel = channel_for(serve(handler), pool_size=1)
    batch = _batch(0, 4)
    handler.faults[command].extend([None, reply])  # the second message is refused

    results = await channel.send(batch)

    assert isinstance(results[1], PermanentSendError)
    assert results[1].reason == f"{stage}: {reply}"
    # Without the RSET, aiosmtpd would answer the next MAIL with "503 nested MAIL".
    _assert_sent(handler, [batch[0], *batch[2:]], [results[0], *results[2:]])
    assert len(handler.greeted) == 1
    assert handler.resets == _resets_after_refusal(handler, stage)


def _resets_after_refusal(handler: Recorder, stage: str) -> list[Peer]:
    """RSET once on the one connection; but none after a refused "." when pipelining, as
    the next transaction is already on the wire (and "." ends a transaction anyway)."""
    return [] if handler.pipelining and stage == "DATA" else handler.greeted


@pytest.mark.parametrize(("command", "stage"), [("MAIL", "MAIL FROM"), ("DATA", "DATA")])
async def test_a_421_pushes_back_and_the_rest_of_the_batch_comes_back_transient(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel], command: str, stage: str
) -> None:
    handler = Recorder()
    # The server keeps the connection open: the client must drop it by itself.
    handler.faults[command].extend([None, "421 4.3.2 Service shutting down"])
    channel = channel_for(serve(handler), pool_size=1, pushback_seconds=90)
    batch = _batch(0, 4)

    results = await channel.send(batch)

    _assert_sent(handler, batch[:1], results[:1])
    assert isinstance(results[1], TransientSendError)
    assert results[1].reason == f"{stage}: 421 4.3.2 Service shutting down"
    assert results[1].retry_after == 90
    for result in results[2:]:
        assert isinstance(result, TransientSendError)
        assert result.reason == f"not sent: the server pushed back ({results[1].reason})"
        assert result.retry_after == 90
    assert len(handler.deliveries) == 1
    assert handler.resets == []

    # Holding off is the dispatcher's business (cluster-wide): the channel sends on.
    later = _batch(4, 7)
    _assert_sent(handler, later, await channel.send(later))
    assert len(set(handler.greeted)) == 2  # the connection that got the 421 was replaced


@pytest.mark.parametrize("command", ["MAIL", "DATA"])
async def test_without_pushback_a_421_drops_the_connection_and_the_pool_recovers(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel], command: str
) -> None:
    handler = Recorder()
    # The server keeps the connection open: the client must drop it by itself.
    handler.faults[command].append("421 4.3.2 Service shutting down")
    channel = channel_for(serve(handler), pool_size=1, pushback_seconds=0)
    batch = _batch(0, 3)

    results = await channel.send(batch)

    assert isinstance(results[0], TransientSendError)
    assert "421 4.3.2 Service shutting down" in results[0].reason
    assert results[0].retry_after is None
    _assert_sent(handler, batch[1:], results[1:])
    assert len(set(handler.greeted)) == 2  # replaced once
    assert handler.resets == []

    later = _batch(3, 6)
    _assert_sent(handler, later, await channel.send(later))
    assert len(set(handler.greeted)) == 2


# --- broken connections ------------------------------------------------------------------


@pytest.mark.parametrize("fault", [HANG, DROP])
async def test_a_connection_broken_in_data_is_replaced_and_that_message_is_transient(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel], fault: str
) -> None:
    handler = Recorder()
    handler.faults["DATA"].append(fault)
    channel = channel_for(serve(handler), pool_size=1, timeout=0.2)
    batch = _batch(0, 3)

    results = await channel.send(batch)

    assert isinstance(results[0], TransientSendError)
    assert results[0].reason.startswith("DATA: connection lost")
    _assert_sent(handler, batch[1:], results[1:])
    assert len(set(handler.greeted)) == 2


@pytest.mark.parametrize("drops", [1, 2])
async def test_a_connection_lost_before_the_transaction_is_retried_once(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel], drops: int
) -> None:
    handler = Recorder()
    handler.faults["MAIL"].extend([DROP] * drops)
    channel = channel_for(serve(handler), pool_size=1)
    batch = _batch(0, 2)

    results = await channel.send(batch)

    if drops == 1:  # nothing was transferred, so it goes again on a new connection
        _assert_sent(handler, batch, results)
    else:
        assert isinstance(results[0], TransientSendError)
        assert results[0].reason == "MAIL FROM: connection lost"
        _assert_sent(handler, batch[1:], results[1:])
    assert len(set(handler.greeted)) == drops + 1


async def test_an_idle_connection_the_server_closed_is_reopened_transparently(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()
    channel = channel_for(serve(handler), pool_size=1)
    _assert_sent(handler, _batch(0, 1), await channel.send(_batch(0, 1)))

    # Close it from the server's side and wait for that without letting this loop run,
    # so that the client may not have noticed yet when it next sends.
    assert handler.controller is not None
    server = handler.connections[handler.greeted[0]]
    closed = threading.Event()

    def close_idle() -> None:
        assert server.transport is not None
        server.transport.close()
        closed.set()

    handler.controller.loop.call_soon_threadsafe(close_idle)
    assert closed.wait(5)

    later = _batch(1, 3)
    _assert_sent(handler, later, await channel.send(later))
    assert len(set(handler.greeted)) == 2


async def test_a_server_that_stops_mid_batch_fails_the_rest_as_transient(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()
    handler.faults["DATA"].extend([None, None, STOP])
    channel = channel_for(serve(handler), pool_size=1)
    batch = _batch(0, 6)

    results = await channel.send(batch)

    _assert_sent(handler, batch[:2], results[:2])
    assert isinstance(results[2], TransientSendError)
    assert results[2].reason.startswith("DATA: connection lost")
    for result in results[3:]:
        assert isinstance(result, TransientSendError)
        assert result.reason.startswith(f"could not connect to the SMTP server at {HOST}:")


async def test_an_unreachable_server_fails_the_whole_batch_as_transient(
    channel_for: Callable[..., SmtpChannel],
) -> None:
    channel = channel_for(_free_port(), pool_size=4)  # nothing listens there

    results = await channel.send(_batch(0, 10))

    assert len(results) == 10
    for result in results:
        assert isinstance(result, TransientSendError)
        assert result.reason.startswith(f"could not connect to the SMTP server at {HOST}:")


# --- authentication ----------------------------------------------------------------------


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_login_with_the_right_credentials_sends(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel], mechanism: str
) -> None:
    handler = Recorder(require_auth=True)
    other = {"PLAIN": "LOGIN", "LOGIN": "PLAIN"}[mechanism]
    port = serve(
        handler,
        authenticator=handler.authenticate,
        auth_require_tls=False,
        auth_exclude_mechanism=[other],
    )
    channel = channel_for(port, pool_size=2, username=USER, password=PASSWORD)
    batch = _batch(0, 5)

    _assert_sent(handler, batch, await channel.send(batch))
    assert handler.logins == [(mechanism, USER.encode())] * len(set(handler.greeted))


async def test_wrong_credentials_fail_the_batch_permanently(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder(require_auth=True)
    port = serve(handler, authenticator=handler.authenticate, auth_require_tls=False)
    channel = channel_for(port, pool_size=2, username=USER, password="wrong")

    results = await channel.send(_batch(0, 5))

    assert handler.logins  # it did try
    for result in results:
        assert isinstance(result, PermanentSendError)
        assert result.reason.startswith("authentication failed: 535")
    assert handler.deliveries == []


async def test_credentials_for_a_server_without_auth_fail_permanently(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()
    channel = channel_for(serve(handler), username=USER, password=PASSWORD)

    results = await channel.send(_batch(0, 2))

    for result in results:
        assert isinstance(result, PermanentSendError)
        assert "does not offer AUTH" in result.reason
    assert handler.deliveries == []


# --- TLS ---------------------------------------------------------------------------------


async def test_starttls_then_login_sends_encrypted(
    serve: Callable[..., int],
    channel_for: Callable[..., SmtpChannel],
    server_tls: ssl.SSLContext,
) -> None:
    handler = Recorder(require_auth=True)
    # aiosmtpd refuses AUTH before STARTTLS by default (auth_require_tls=True).
    port = serve(
        handler, tls_context=server_tls, require_starttls=True, authenticator=handler.authenticate
    )
    channel = channel_for(
        port, security="starttls", validate_certs=False, username=USER, password=PASSWORD
    )
    batch = _batch(0, 3)

    _assert_sent(handler, batch, await channel.send(batch))
    assert all(d.tls for d in handler.deliveries)


async def test_implicit_tls_sends_encrypted(
    serve: Callable[..., int],
    channel_for: Callable[..., SmtpChannel],
    server_tls: ssl.SSLContext,
) -> None:
    handler = Recorder()
    channel = channel_for(
        serve(handler, ssl_context=server_tls), security="tls", validate_certs=False
    )
    batch = _batch(0, 3)

    _assert_sent(handler, batch, await channel.send(batch))
    assert all(d.tls for d in handler.deliveries)


async def test_an_untrusted_certificate_is_a_transient_failure(
    serve: Callable[..., int],
    channel_for: Callable[..., SmtpChannel],
    server_tls: ssl.SSLContext,
) -> None:
    handler = Recorder()
    port = serve(handler, tls_context=server_tls, require_starttls=True)
    channel = channel_for(port, security="starttls", validate_certs=True)

    results = await channel.send(_batch(0, 2))

    for result in results:
        assert isinstance(result, TransientSendError)
        assert "CERTIFICATE_VERIFY_FAILED" in result.reason
    assert handler.deliveries == []


async def test_starttls_is_required_not_opportunistic(
    serve: Callable[..., int], channel_for: Callable[..., SmtpChannel]
) -> None:
    handler = Recorder()  # no tls_context: the server does not offer STARTTLS
    channel = channel_for(serve(handler), security="starttls")

    results = await channel.send(_batch(0, 2))

    for result in results:
        assert isinstance(result, TransientSendError)
        assert "STARTTLS" in result.reason
    assert handler.deliveries == []
