"""A message's timeline from its row and events (no database), and `--since`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tidings.errors import InvalidInput
from tidings.events.models import Event
from tidings.messages.cli import since_moment
from tidings.messages.service import Attempt
from tidings.messages.timeline import steps
from tidings.outbox.models import Message

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _message(**fields: object) -> Message:
    values: dict[str, object] = {"id": 7, "org_id": 1, "channel": "email",
                                 "recipient": "ada@example.com", "status": "sent",
                                 "attempts": 1, "reason": None, "created_at": T0, "due_at": T0,
                                 "sent_at": None, "finished_at": None}  # fmt: skip
    return Message(**(values | fields))


def _event(kind: str, at: datetime, **fields: object) -> Event:
    return Event(type=kind, occurred_at=at, source=fields.pop("source", "dispatcher"),
                 is_bot=fields.pop("is_bot", False), data=fields.pop("data", None))  # fmt: skip


def test_a_sent_then_opened_message_after_a_failover() -> None:
    message = _message(status="sent", attempts=2, sent_at=T0 + timedelta(minutes=1))
    tried = [
        Attempt(1, 4, "first", T0 + timedelta(seconds=30), "failed over", "503 overloaded"),
        Attempt(2, 5, "backup", T0 + timedelta(minutes=1), "sent", None),
    ]
    events = [
        _event("sent", T0 + timedelta(minutes=1)),
        _event("opened", T0 + timedelta(minutes=5), source="tracking"),
        _event("clicked", T0 + timedelta(minutes=4), source="tracking", is_bot=True,
               data={"url": "https://a.example/", "bot": "too fast"}),
    ]  # fmt: skip
    found = steps(message, events, tried)
    assert [s.what for s in found] == [
        "queued", "attempt", "attempt", "sent", "clicked", "opened",
    ]  # fmt: skip
    assert found[1].detail == "1 through first (connection 4): failed over; 503 overloaded"
    assert found[2].detail == "2 through backup (connection 5): sent"
    assert found[4].detail == "url https://a.example/; bot (too fast), not counted; from tracking"


def test_a_queued_retry_says_why_and_when_next() -> None:
    message = _message(status="queued", attempts=1, reason="451 try later",
                       due_at=T0 + timedelta(minutes=2))  # fmt: skip
    found = steps(message, [])
    assert [s.what for s in found] == ["queued", "retrying"]
    assert found[0].detail == "due 2026-12-07T09:02:00+00:00"
    assert found[1].at is None
    assert "last: 451 try later" in (found[1].detail or "")


def test_a_failed_one_shows_its_reason_and_a_skipped_one_its_own() -> None:
    ended = T0 + timedelta(minutes=9)
    failed = steps(
        _message(status="failed", attempts=3, finished_at=ended),
        [_event("failed", ended, data={"reason": "550 no such user"})],
        [Attempt(3, None, None, ended, "failed", "550 no such user")],  # kept from before 0027
    )
    assert [s.what for s in failed] == ["queued", "attempt", "failed"]
    assert failed[1].detail == "3 before any connection: failed; 550 no such user"
    assert failed[-1].detail == "reason 550 no such user; from dispatcher"
    skipped = steps(_message(status="skipped", attempts=0, reason="unsubscribed",
                             finished_at=T0), [])  # fmt: skip
    assert [(s.what, s.detail) for s in skipped] == [("queued", None), ("skipped", "unsubscribed")]


def test_a_message_sent_at_its_first_attempt_through_the_sink_shows_no_attempt() -> None:
    sent = T0 + timedelta(seconds=1)
    message = _message(status="sent", attempts=1, is_test=True, sent_at=sent)
    found = steps(message, [_event("sent", sent)], [Attempt(1, None, None, sent, "sent", None)])
    assert [s.what for s in found] == ["queued", "sent"]


def test_since_reads_dates_times_and_durations() -> None:
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    assert since_moment("2h", now=now) == now - timedelta(hours=2)
    assert since_moment("7d", now=now) == now - timedelta(days=7)
    assert since_moment("2026-12-01", now=now) == datetime(2026, 12, 1, tzinfo=UTC)
    assert since_moment("2026-12-01T09:30+01:00", now=now) == datetime(
        2026, 12, 1, 8, 30, tzinfo=UTC
    )
    with pytest.raises(InvalidInput) as refused:
        since_moment("last week", now=now)
    assert refused.value.errors[0].field == "--since"
