"""Reading DSNs and ARF reports as real MTAs write them."""

from __future__ import annotations

from tests.support.reports import arf, dsn
from tidings.bounces.parse import OriginalId, Report, our_message, parse

SENT = "41.7@acme.example"


def test_hard_bounce() -> None:
    assert parse(dsn(message_id=SENT, recipient="gone@example.com")) == [
        Report(
            kind="bounced",
            report_id="<20261122044512.3F1A21C0123@mx.acme.example>",
            recipient="gone@example.com",
            original=OriginalId(41, 7),
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
            original=OriginalId(41, 7),
            feedback_type="abuse",
        )
    ]


def test_foreign_original_is_returned_unmatched() -> None:
    (report,) = parse(dsn(message_id="CAF=abc@mail.gmail.com", recipient="x@example.com"))
    assert report.original is None


def test_garbage_gives_nothing() -> None:
    assert parse(b"") == []
    assert parse(b"\xff\xfe\x00garbage") == []
    assert parse(b"Subject: out of office\r\n\r\nI am away.\r\n") == []
    assert parse(b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\n") == []
    unknown = dsn(message_id=SENT, recipient="a@example.com", action="teleported")
    assert parse(unknown) == []


def test_our_message_ids() -> None:
    assert our_message("<12.3@acme.example>") == OriginalId(12, 3)
    assert our_message("12.3@xn--bcher-kva.example") == OriginalId(12, 3)
    assert our_message("<abc.3@acme.example>") is None
    assert our_message(None) is None
