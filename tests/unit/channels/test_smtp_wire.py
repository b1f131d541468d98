"""What the SMTP client writes and how it reads replies, without a network."""

from __future__ import annotations

import pytest

from tidings.channels.smtp_wire import (
    BadAddress,
    ProtocolError,
    Reply,
    _Protocol,
    data_payload,
    mail_command,
    rcpt_command,
)


@pytest.mark.parametrize(
    ("content", "payload"),
    [
        (b"a: b\r\n\r\nplain\r\n", b"a: b\r\n\r\nplain\r\n.\r\n"),
        (b"a: b\r\n\r\n.x\r\n.\r\n..\r\n", b"a: b\r\n\r\n..x\r\n..\r\n...\r\n.\r\n"),
        (b".x\r\n", b"..x\r\n.\r\n"),
        (b"no end of line", b"no end of line\r\n.\r\n"),
        (b"a\n.b\n", b"a\r\n..b\r\n.\r\n"),
        (b"a\r.b\r", b"a\r\n..b\r\n.\r\n"),
        (b"a\r\r\n\n.b", b"a\r\n\r\n\r\n..b\r\n.\r\n"),
        (b"", b".\r\n"),
    ],
)
def test_data_payload_has_crlf_endings_and_stuffed_dots(content: bytes, payload: bytes) -> None:
    assert data_payload(content) == payload


def test_data_payload_of_clean_content_only_appends_the_end() -> None:
    content = b"Subject: x\r\n\r\n" + b"a line of text\r\n" * 1000
    assert data_payload(content) == content + b".\r\n"


def test_envelope_commands() -> None:
    assert mail_command("news@acme.example") == b"MAIL FROM:<news@acme.example>\r\n"
    assert rcpt_command("a@b.example") == b"RCPT TO:<a@b.example>\r\n"
    assert rcpt_command("a@bücher.example") == b"RCPT TO:<a@xn--bcher-kva.example>\r\n"


@pytest.mark.parametrize(
    "address",
    ["a@b\r\nRSET", "a@b\n", "a\0@b", "<a@b>", "a@b> SIZE=1", "zoë@example.test", "a@-bad-.例"],
)
def test_addresses_that_cannot_go_on_a_command_line(address: str) -> None:
    with pytest.raises(BadAddress) as raised:
        rcpt_command(address)
    assert repr(address) in str(raised.value)


def _replies(data: bytes, *, chunk: int) -> list[Reply]:
    protocol = _Protocol()
    for start in range(0, len(data), chunk):
        protocol.data_received(data[start : start + chunk])
    assert protocol.failure is None
    return list(protocol.replies)


@pytest.mark.parametrize("chunk", [1, 2, 7, 1000])
def test_replies_are_parsed_whole_however_they_arrive(chunk: int) -> None:
    data = (
        b"250-mx.example Hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
        b"354 End data with <CR><LF>.<CR><LF>\r\n"
        b"250 2.0.0 Ok: queued as 4XyZ\n"  # a bare LF is read too
        b"221\r\n"
    )
    assert _replies(data, chunk=chunk) == [
        Reply(250, b"mx.example Hello\nPIPELINING\n8BITMIME"),
        Reply(354, b"End data with <CR><LF>.<CR><LF>"),
        Reply(250, b"2.0.0 Ok: queued as 4XyZ"),
        Reply(221, b""),
    ]
    assert str(Reply(550, b"5.1.1 first\n5.1.1 second")) == "550 5.1.1 first 5.1.1 second"


@pytest.mark.parametrize("data", [b"hello\r\n", b"25 short\r\n", b"250+odd\r\n", b"x" * 9000])
def test_what_is_not_a_reply_fails_the_connection(data: bytes) -> None:
    protocol = _Protocol()
    protocol.data_received(data)
    assert isinstance(protocol.failure, ProtocolError)
    assert not protocol.replies
