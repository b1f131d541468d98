"""The SMTP channel on the wire: pipelining, push-back, dot-stuffing, AUTH and STARTTLS
against the scripted server of `tests.support.smtp_server`, which records every command,
every data section as sent and the round trips ("turns") each connection took.

`test_smtp.py` covers the same channel against aiosmtpd (a real server, with and without
PIPELINING); here each test scripts the exact replies it needs, including those aiosmtpd
cannot give (a 421 that closes, DATA accepted after every recipient was refused).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest

from tests.support.outbound import LOOPBACK
from tests.support.smtp_server import DROP, HOST, SmtpServer
from tidings.channels.base import (
    Outgoing,
    PermanentSendError,
    Result,
    Sent,
    TransientSendError,
)
from tidings.channels.smtp import SmtpChannel, SmtpSettings

SENDER = "news@tidings.test"
USER, PASSWORD = "tidings", "pa:ss wörd"
BUSY = "421 4.7.0 mx.test Too many messages, closing connection"

Start = Callable[..., Awaitable[SmtpServer]]
Make = Callable[..., SmtpChannel]


def _message(i: int, *, recipient: str | None = None, content: bytes | None = None) -> Outgoing:
    to = recipient or f"user{i}@example.test"
    body = content or (
        f"Message-ID: <m{i}@tidings.test>\r\nSubject: Issue {i}\r\n\r\nHello {i}\r\n".encode()
    )
    return Outgoing(
        message_id=i,
        org_id=1,
        channel="email",
        sender=SENDER,
        recipient=to,
        subject=f"Issue {i}",
        content=body,
    )


def _batch(start: int, stop: int) -> list[Outgoing]:
    return [_message(i) for i in range(start, stop)]


def _assert_sent(server: SmtpServer, batch: Sequence[Outgoing], results: Sequence[Result]) -> None:
    """Each message of `batch` arrived once, intact, and its result carries the queue id
    the server gave that very message."""
    counts = Counter(message.rcpt_tos for message in server.received)
    by_recipient = server.by_recipient()
    assert len(results) == len(batch)
    for message, result in zip(batch, results, strict=True):
        assert counts[(message.recipient,)] == 1, message.recipient
        received = by_recipient[message.recipient]
        assert received.mail_from == message.sender
        assert received.content == message.content
        assert result == Sent(received.queue_id)


@pytest.fixture
async def serve() -> AsyncIterator[Start]:
    """Start scripted servers (keywords for SmtpServer); stopped at teardown."""
    started: list[SmtpServer] = []

    async def start(**options: Any) -> SmtpServer:
        server = SmtpServer(**options)
        await server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


@pytest.fixture
async def channel_for(serve: Start) -> AsyncIterator[Make]:
    """Make SMTP channels to a scripted server (plain SMTP unless told otherwise), closed
    at teardown before the servers stop (this fixture depends on `serve`)."""
    made: list[SmtpChannel] = []

    def make(server: SmtpServer, **settings: Any) -> SmtpChannel:
        options: dict[str, Any] = {"security": "none", "helo_name": "client.test", **settings}
        channel = SmtpChannel(SmtpSettings(HOST, server.port, **options), policy=LOOPBACK)
        made.append(channel)
        return channel

    yield make
    for channel in made:
        await channel.close()


# --- pipelining --------------------------------------------------------------------------


async def test_a_pipelined_stream_takes_about_one_round_trip_per_message(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    channel = channel_for(server, pool_size=1)
    batch = _batch(0, 50)

    _assert_sent(server, batch, await channel.send(batch))

    assert server.verbs() == ["EHLO", *["MAIL", "RCPT", "DATA"] * 50]
    # EHLO; the first MAIL, RCPT and DATA; then each message's content with the next
    # message's commands. (A write split in two on the way would add a turn.)
    assert server.turns[1] <= 2 + 50 + 2


@pytest.mark.parametrize(
    ("extensions", "pipelining"),
    [(("8BITMIME",), True), (("PIPELINING", "8BITMIME"), False)],
    ids=["not-offered", "turned-off"],
)
async def test_without_pipelining_each_command_waits_for_its_reply(
    serve: Start, channel_for: Make, extensions: tuple[str, ...], pipelining: bool
) -> None:
    server = await serve(extensions=extensions)
    channel = channel_for(server, pool_size=1, pipelining=pipelining)
    batch = _batch(0, 10)

    _assert_sent(server, batch, await channel.send(batch))

    assert server.verbs() == ["EHLO", *["MAIL", "RCPT", "DATA"] * 10]
    assert server.turns[1] == 1 + 4 * 10  # EHLO, then MAIL, RCPT, DATA, content each


@pytest.mark.parametrize("pool_size", [1, 3])
@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("550 5.1.1 <{}>: Recipient address rejected", PermanentSendError),
        ("450 4.2.1 <{}>: Mailbox busy", TransientSendError),
    ],
)
async def test_a_refused_recipient_mid_batch_fails_alone_and_nothing_is_misattributed(
    serve: Start, channel_for: Make, pool_size: int, reply: str, error: type[Exception]
) -> None:
    server = await serve()
    batch = _batch(0, 12)
    refused = {4, 9}
    for i in refused:
        server.refuse[batch[i].recipient] = reply.format(batch[i].recipient)
    channel = channel_for(server, pool_size=pool_size)

    results = await channel.send(batch)

    for i in refused:
        assert isinstance(results[i], error)
        # The reason is the RCPT's reply, not the 554 that then answered DATA.
        assert results[i].reason == f"RCPT TO: {reply.format(batch[i].recipient)}"  # type: ignore[union-attr]
    kept = [i for i in range(len(batch)) if i not in refused]
    _assert_sent(server, [batch[i] for i in kept], [results[i] for i in kept])
    assert len(server.received) == len(kept)
    assert server.verbs().count("RSET") == len(refused)


async def test_a_refused_mail_from_mid_batch_fails_alone(serve: Start, channel_for: Make) -> None:
    server = await serve()
    server.script["MAIL"].extend([None, None, "451 4.3.0 Try again later"])
    channel = channel_for(server, pool_size=1)
    batch = _batch(0, 5)

    results = await channel.send(batch)

    assert isinstance(results[2], TransientSendError)
    assert results[2].reason == "MAIL FROM: 451 4.3.0 Try again later"
    _assert_sent(server, [*batch[:2], *batch[3:]], [*results[:2], *results[3:]])
    assert server.verbs().count("RSET") == 1


async def test_data_accepted_after_every_recipient_was_refused_gets_a_lone_dot(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    batch = _batch(0, 3)
    server.refuse[batch[1].recipient] = "550 5.1.1 No such user"
    server.script["DATA"].extend([None, "354 Go ahead anyway"])  # against RFC 2920 §3.1
    channel = channel_for(server, pool_size=1)

    results = await channel.send(batch)

    assert isinstance(results[1], PermanentSendError)
    assert results[1].reason == "RCPT TO: 550 5.1.1 No such user"
    _assert_sent(server, [batch[0], batch[2]], [results[0], results[2]])
    # The refused message's content never went: only "." ended that DATA.
    assert server.data_sections[1] == b".\r\n"
    assert server.verbs().count("RSET") == 1


async def test_a_multi_line_refusal_is_read_whole(serve: Start, channel_for: Make) -> None:
    server = await serve()
    server.script["RCPT"].append("550-5.1.1 The mailbox does not exist.\r\n550 5.1.1 Try another.")
    channel = channel_for(server, pool_size=1)
    batch = _batch(0, 2)

    results = await channel.send(batch)

    assert isinstance(results[0], PermanentSendError)
    assert results[0].reason == (
        "RCPT TO: 550 5.1.1 The mailbox does not exist. 5.1.1 Try another."
    )
    _assert_sent(server, batch[1:], results[1:])


async def test_a_message_pipelined_behind_a_broken_one_goes_again_on_a_new_connection(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    server.script["."].append(DROP)  # the connection goes while the first message ends
    channel = channel_for(server, pool_size=1)
    batch = _batch(0, 3)

    results = await channel.send(batch)

    assert isinstance(results[0], TransientSendError)
    assert results[0].reason.startswith("DATA: connection lost")
    _assert_sent(server, batch[1:], results[1:])
    assert server.connections == 2


async def test_a_message_another_connection_lost_goes_on_this_one(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    server.script["MAIL"].extend([None, DROP])  # the second connection's first MAIL
    channel = channel_for(server, pool_size=2, timeout=5)
    batch = _batch(0, 2)

    _assert_sent(server, batch, await channel.send(batch))
    # Queued again, the message went on whichever connection took it first: the one
    # still open (its MAIL, RCPT and DATA written anew) or a new one.
    assert server.by_recipient()[batch[1].recipient].connection in (1, 3)


# --- 421: push-back ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verb", "stage"),
    [("MAIL", "MAIL FROM"), ("RCPT", "RCPT TO"), ("DATA", "DATA"), (".", "DATA")],
)
@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "no-pipelining"])
async def test_a_421_mid_batch_pushes_back_and_the_rest_comes_back_transient(
    serve: Start, channel_for: Make, verb: str, stage: str, pipelining: bool
) -> None:
    server = await serve()
    server.script[verb].extend([None, None, BUSY])  # the server closes after it
    channel = channel_for(server, pool_size=1, pipelining=pipelining)
    batch = _batch(0, 6)

    results = await channel.send(batch)

    _assert_sent(server, batch[:2], results[:2])
    assert isinstance(results[2], TransientSendError)
    assert results[2].reason == f"{stage}: {BUSY}"
    assert results[2].retry_after == 60  # the default pushback_seconds
    for result in results[3:]:
        assert isinstance(result, TransientSendError)
        assert result.reason == f"not sent: the server pushed back ({stage}: {BUSY})"
        assert result.retry_after == 60
    assert len(server.received) == 2
    assert server.connections == 1  # no new connection to a server that pushed back


async def test_a_421_on_one_pooled_connection_stops_the_others(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    server.script["MAIL"].extend([*[None] * 6, BUSY])
    channel = channel_for(server, pool_size=4, pushback_seconds=300)
    batch = _batch(0, 40)

    results = await channel.send(batch)

    sent = [(m, r) for m, r in zip(batch, results, strict=True) if isinstance(r, Sent)]
    _assert_sent(server, [m for m, _ in sent], [r for _, r in sent])
    held = [r for r in results if not isinstance(r, Sent)]
    assert len(sent) + len(held) == len(batch)  # nothing lost
    assert len(sent) < len(batch) // 2  # what was under way when the 421 came, not the rest
    assert all(isinstance(r, TransientSendError) and r.retry_after == 300 for r in held)
    assert [r.reason for r in held].count(f"MAIL FROM: {BUSY}") == 1
    assert server.connections == 4


async def test_a_421_while_connecting_holds_back_only_what_nobody_could_send(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    server.script["EHLO"].append(BUSY)  # the first connection is refused; the others go
    channel = channel_for(server, pool_size=2)
    batch = _batch(0, 6)

    _assert_sent(server, batch, await channel.send(batch))

    server.script["EHLO"].extend([BUSY, BUSY])
    await channel.close()
    channel = channel_for(server, pool_size=2)
    results = await channel.send(_batch(6, 8))
    for result in results:
        assert isinstance(result, TransientSendError)
        assert result.reason == f"cannot connect to {HOST}:{server.port}: EHLO: {BUSY}"
        assert result.retry_after == 60


# --- content and addresses -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "wire"),
    [
        (
            b"Subject: dots\r\n\r\n.leading\r\n..two\r\n.\r\nlast\r\n",
            b"Subject: dots\r\n\r\n..leading\r\n...two\r\n..\r\nlast\r\n.\r\n",
        ),
        (b".first line\r\nsecond\r\n", b"..first line\r\nsecond\r\n.\r\n"),
        (
            b"Subject: bare\n\n.b\nno end of line",
            b"Subject: bare\r\n\r\n..b\r\nno end of line\r\n.\r\n",
        ),
        (b"Subject: cr\r\r.b\r\n", b"Subject: cr\r\n\r\n..b\r\n.\r\n"),
    ],
    ids=["crlf", "first-line", "bare-lf", "bare-cr"],
)
async def test_content_goes_dot_stuffed_with_crlf_line_endings(
    serve: Start, channel_for: Make, content: bytes, wire: bytes
) -> None:
    server = await serve()
    channel = channel_for(server)
    batch = [_message(0, content=content), _message(1)]

    results = await channel.send(batch)

    assert all(isinstance(r, Sent) for r in results)
    received = server.by_recipient()[batch[0].recipient]
    assert received.wire == wire
    assert received.content == wire[: -len(b".\r\n")].replace(b"\r\n..", b"\r\n.").removeprefix(
        b"."
    )


@pytest.mark.parametrize(
    "recipient",
    [
        "evil@example.test>\r\nRCPT TO:<victim@example.test",
        "nul\0@example.test",
        "a<b@example.test",
    ],
)
async def test_a_recipient_that_cannot_go_on_a_command_line_fails_permanently_by_name(
    serve: Start, channel_for: Make, recipient: str
) -> None:
    server = await serve()
    channel = channel_for(server, pool_size=1)
    batch = [_message(0), _message(1, recipient=recipient), _message(2)]

    results = await channel.send(batch)

    assert isinstance(results[1], PermanentSendError)
    assert results[1].reason.startswith(f"RCPT TO: {recipient!r} cannot go on an SMTP command line")
    _assert_sent(server, [batch[0], batch[2]], [results[0], results[2]])
    assert not any("victim" in line or "\0" in line for _, line in server.commands)


async def test_a_sender_that_cannot_go_on_a_command_line_fails_every_message(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    channel = channel_for(server)
    batch = [
        Outgoing(i, 1, "email", "news@tidings.test>\r\nRSET", f"u{i}@example.test", "s", b"x\r\n")
        for i in range(3)
    ]

    for result in await channel.send(batch):
        assert isinstance(result, PermanentSendError)
        assert result.reason.startswith("MAIL FROM: 'news@tidings.test>\\r\\nRSET' cannot go")
    assert server.verbs().count("MAIL") == 0


async def test_an_idn_domain_goes_in_the_envelope_as_punycode(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    channel = channel_for(server)
    batch = [
        _message(0, recipient="anna@bücher.example"),
        _message(1, recipient="zoë@example.test"),
    ]

    results = await channel.send(batch)

    assert isinstance(results[0], Sent)
    assert server.received[0].rcpt_tos == ("anna@xn--bcher-kva.example",)
    assert isinstance(results[1], PermanentSendError)
    assert results[1].reason == (
        "the server does not offer SMTPUTF8 (RFC 6531), needed for the recipient's address "
        "(its local part is not ASCII)"
    )
    assert "zoë" not in results[1].reason  # it is logged: the address stays out
    assert len(server.received) == 1


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-by-one"])
async def test_a_non_ascii_local_part_goes_in_an_smtputf8_transaction(
    serve: Start, channel_for: Make, pipelining: bool
) -> None:
    server = await serve(extensions=("PIPELINING", "8BITMIME", "SMTPUTF8"))
    channel = channel_for(server, pipelining=pipelining)
    batch = [
        _message(0, recipient="anna@example.test"),
        _message(1, recipient="jösé@bücher.example"),
        _message(2, recipient="ben@example.test"),
    ]

    results = await channel.send(batch)

    assert all(isinstance(result, Sent) for result in results), results
    mails = [text for _, text in server.commands if text.startswith("MAIL")]
    assert mails == [
        "MAIL FROM:<news@tidings.test>",
        "MAIL FROM:<news@tidings.test> SMTPUTF8",
        "MAIL FROM:<news@tidings.test>",
    ]
    assert server.by_recipient()["jösé@xn--bcher-kva.example"].rcpt_tos == (
        "jösé@xn--bcher-kva.example",
    )


# --- greeting, TLS and AUTH ---------------------------------------------------------------


async def test_helo_when_ehlo_is_refused_and_then_no_pipelining(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    server.script["EHLO"].append("502 5.5.2 Error: command not recognized")
    channel = channel_for(server, pool_size=1)
    batch = _batch(0, 3)

    _assert_sent(server, batch, await channel.send(batch))

    assert server.verbs() == ["EHLO", "HELO", *["MAIL", "RCPT", "DATA"] * 3]
    assert server.turns[1] == 2 + 4 * 3


async def test_starttls_required_but_not_offered_sends_nothing_in_the_clear(
    serve: Start, channel_for: Make
) -> None:
    server = await serve(credentials=(USER, PASSWORD))  # offers AUTH, not STARTTLS
    channel = channel_for(server, security="starttls", username=USER, password=PASSWORD)

    results = await channel.send(_batch(0, 3))

    for result in results:
        assert isinstance(result, TransientSendError)
        assert result.reason == (
            f"cannot connect to {HOST}:{server.port}: the server does not offer STARTTLS"
        )
    assert set(server.verbs()) == {"EHLO"}  # no password, no mail
    assert server.logins == []


@pytest.mark.parametrize(
    ("offered", "used"), [("PLAIN", "PLAIN"), ("LOGIN", "LOGIN"), ("CRAM-MD5 LOGIN PLAIN", "PLAIN")]
)
async def test_auth_plain_or_login_then_send(
    serve: Start, channel_for: Make, offered: str, used: str
) -> None:
    server = await serve(credentials=(USER, PASSWORD), mechanisms=offered)
    channel = channel_for(server, pool_size=2, username=USER, password=PASSWORD)
    batch = _batch(0, 6)

    _assert_sent(server, batch, await channel.send(batch))

    assert server.logins == [(used, USER, True)] * server.connections


@pytest.mark.parametrize("offered", ["PLAIN", "LOGIN"])
async def test_wrong_credentials_fail_every_message_permanently(
    serve: Start, channel_for: Make, offered: str
) -> None:
    server = await serve(credentials=(USER, PASSWORD), mechanisms=offered)
    channel = channel_for(server, pool_size=2, username=USER, password="wrong")

    results = await channel.send(_batch(0, 4))

    for result in results:
        assert isinstance(result, PermanentSendError)
        assert result.reason == "authentication failed: 535 5.7.8 Error: authentication failed"
    assert server.received == []
    assert "MAIL" not in server.verbs()


async def test_no_mechanism_we_speak_fails_permanently(serve: Start, channel_for: Make) -> None:
    server = await serve(credentials=(USER, PASSWORD), mechanisms="CRAM-MD5")
    channel = channel_for(server, username=USER, password=PASSWORD)

    for result in await channel.send(_batch(0, 2)):
        assert isinstance(result, PermanentSendError)
        assert result.reason == (
            f"authentication failed: {HOST}:{server.port}: the server does not offer"
            " AUTH PLAIN or LOGIN (only CRAM-MD5)"
        )


# --- SIZE (RFC 1870) ------------------------------------------------------------------------


@pytest.mark.parametrize("pipelining", [True, False])
async def test_size_is_declared_and_an_oversize_message_fails_before_data(
    serve: Start, channel_for: Make, pipelining: bool
) -> None:
    small = _message(1)
    assert isinstance(small.content, bytes)
    limit = len(small.content) + 10
    big = dataclasses.replace(_message(2), content=small.content + b"x" * 11)
    assert isinstance(big.content, bytes)
    server = await serve(extensions=("PIPELINING", f"SIZE {limit}"))
    channel = channel_for(server, pool_size=1, pipelining=pipelining)

    results = await channel.send([small, big, _message(3)])

    assert isinstance(results[1], PermanentSendError)
    assert results[1].reason == (
        f"the message is {len(big.content)} bytes; the server takes at most {limit} "
        "(its SIZE, RFC 1870)"
    )
    _assert_sent(server, [small, _message(3)], [results[0], results[2]])
    mails = [line for _, line in server.commands if line.upper().startswith("MAIL")]
    assert mails == [
        f"MAIL FROM:<{m.sender}> SIZE={len(m.content)}"
        for m in (small, _message(3))
        if isinstance(m.content, bytes)
    ]
    assert server.verbs() == ["EHLO", *["MAIL", "RCPT", "DATA"] * 2]


async def test_size_without_a_limit_is_declared_and_nothing_is_refused(
    serve: Start, channel_for: Make
) -> None:
    server = await serve(extensions=("PIPELINING", "SIZE"))
    channel = channel_for(server)
    batch = [_message(1)]
    _assert_sent(server, batch, await channel.send(batch))
    assert [line for _, line in server.commands][1].endswith(f" SIZE={len(batch[0].content)}")


async def test_no_size_is_declared_to_a_server_that_does_not_offer_it(
    serve: Start, channel_for: Make
) -> None:
    server = await serve()
    channel = channel_for(server)
    batch = [_message(1)]
    _assert_sent(server, batch, await channel.send(batch))
    assert "SIZE" not in [line for _, line in server.commands][1]
