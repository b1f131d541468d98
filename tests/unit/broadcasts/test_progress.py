from datetime import UTC, datetime, timedelta

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.progress import progress_of

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _broadcast(
    status: str,
    *,
    sent: int = 0,
    failed: int = 0,
    total: int = 0,
    started: datetime | None = None,
    ended: datetime | None = None,
) -> Broadcast:
    return Broadcast(
        status=status, sent_count=sent, failed_count=failed, recipients_count=total,
        started_at=started, completed_at=ended,
    )  # fmt: skip


def test_a_sending_broadcast_has_the_rate_of_the_last_minute_and_an_eta() -> None:
    b = _broadcast("SENDING", sent=550, failed=50, total=1000, started=T0)
    p = progress_of(b, now=T0 + timedelta(minutes=2), moved=100)  # not the average (300)
    assert (p.done, p.total, p.percent, p.final) == (600, 1000, 60, False)
    assert p.per_minute == 100
    assert p.eta_seconds == 240  # 400 left at 100 a minute


def test_nothing_moved_in_the_window_is_no_rate_and_no_eta() -> None:
    b = _broadcast("SENDING", sent=550, failed=50, total=1000, started=T0)
    p = progress_of(b, now=T0 + timedelta(minutes=2))
    assert (p.per_minute, p.eta_seconds) == (None, None)


def test_a_finished_one_keeps_its_rate_but_no_eta() -> None:
    b = _broadcast("SENT", sent=600, total=600, started=T0, ended=T0 + timedelta(minutes=3))
    p = progress_of(b, now=T0 + timedelta(hours=5))  # measured to its end, not to now
    assert (p.per_minute, p.eta_seconds, p.final, p.percent) == (200, None, True, 100)


def test_before_it_starts_there_is_neither() -> None:
    p = progress_of(_broadcast("SCHEDULED"), now=T0)
    assert (p.done, p.total, p.per_minute, p.eta_seconds, p.percent) == (0, 0, None, None, 0)
    paused = progress_of(_broadcast("PAUSED", sent=5, total=10, started=T0), now=T0, moved=5)
    assert paused.eta_seconds is None  # no ETA while nothing is sending
    assert paused.per_minute == 5  # what was in flight finished: five in the last minute
