"""Reading DSNs and ARF reports as real MTAs write them."""

from __future__ import annotations

from tests.support.reports import arf, dsn
from tidings.bounces.parse import OriginalId, Report, bare_id, legacy_ids, parse

SENT = "3f9c2a7e51d04b8c9e6a1f2b7d3c4e5a@acme.example"


def test_hard_bounce() -> None:
    assert parse(dsn(message_id=SENT, recipient="gone@example.com")) == [
        Report(
            kind="bounced",
            report_id="<20261122044512.3F1A21C0123@mx.acme.example>",
            recipient="gone@example.com",
            original=SENT,
            status="5.1.1",
            diagnostic="smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected: "
            "User unknown",
        )
    ]


def test_soft_and_delayed_and_delivered() -> None:
    delayed = parse(dsn(message_id=SENT, recipient="a@example.com", action="delayed",
                        status="4.4.1", diagnostic="smtp; 451 try later"))  # fmt: skip
    failed_4xx = parse(dsn(message_id=SENT, recipient="a@example.com", status="4.2.2"))
    delivered = parse(dsn(message_id=SENT, recipient="a@example.com", action="delivered",
                          status="2.0.0"))  # fmt: skip
    assert [(r.kind, r.status) for r in delayed + failed_4xx + delivered] == [
        ("deferred", "4.4.1"), ("deferred", "4.2.2"), ("delivered", "2.0.0"),
    ]  # fmt: skip


def test_complaint() -> None:
    assert parse(arf(message_id=SENT, recipient="angry@example.com")) == [
        Report(
            kind="complained",
            report_id="<433689.81121.example@mailbox.example.net>",
            recipient="angry@example.com",
            original=SENT,
            feedback_type="abuse",
        )
    ]


def test_the_original_message_id_is_returned_bare_for_the_service_to_match() -> None:
    (report,) = parse(dsn(message_id="CAF=abc@mail.gmail.com", recipient="x@example.com"))
    assert report.original == "CAF=abc@mail.gmail.com"


def test_garbage_gives_nothing() -> None:
    assert parse(b"") == []
    assert parse(b"\xff\xfe\x00garbage") == []
    assert parse(b"Subject: out of office\r\n\r\nI am away.\r\n") == []
    assert parse(b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n") == []
    unknown = dsn(message_id=SENT, recipient="a@example.com", action="teleported")
    assert parse(unknown) == []


def test_message_ids_of_the_form_before_0020() -> None:
    assert legacy_ids("<12.3@acme.example>") == OriginalId(12, 3)
    assert legacy_ids("12.3@xn--bcher-kva.example") == OriginalId(12, 3)
    assert legacy_ids("<abc.3@acme.example>") is None
    assert legacy_ids(SENT) is None
    assert legacy_ids(None) is None


def test_bare_ids() -> None:
    assert bare_id(f" <{SENT}> ") == SENT
    assert bare_id("no-at-sign") is None
    assert bare_id(None) is None
    assert bare_id("<>") is None


def _without_rcpt_to(raw: bytes) -> bytes:
    """An ARF that names its recipient only in the original's To header."""
    head, _, tail = raw.partition(b"Original-Rcpt-To: ")
    return head + tail.partition(b"\r\n")[2]


def test_a_complaint_s_recipient_is_the_exact_address_of_the_original_s_to() -> None:
    for to, address in (
        ("Alice <alice@example.com>", "alice@example.com"),
        ('"Smith; Alice" <Alice.Smith@example.com>', "Alice.Smith@example.com"),
        ("=?utf-8?q?Zo=C3=A9?= <zoe@example.com>, bob@example.com", "zoe@example.com"),
        ("<carol@example.com>", "carol@example.com"),
        ("dave@example.com", "dave@example.com"),
    ):
        raw = _without_rcpt_to(arf(message_id=SENT, recipient=to))
        assert b"Original-Rcpt-To" not in raw
        (report,) = parse(raw)
        assert report.recipient == address, to


def test_a_dsn_s_final_recipient_drops_only_its_address_type() -> None:
    for field, address in (
        ("rfc822; gone@example.com", "gone@example.com"),
        ("rfc822;<gone@example.com>", "gone@example.com"),
        ("gone@example.com", "gone@example.com"),
    ):
        (report,) = parse(dsn(message_id=SENT, recipient="x@example.com").replace(
            b"Final-Recipient: rfc822; x@example.com", f"Final-Recipient: {field}".encode()
        ))  # fmt: skip
        assert report.recipient == address, field
