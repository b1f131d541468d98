"""`broadcasts watch`'s arithmetic: where a send stands, its rate and the time left."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.progress import Progress

from tidings.broadcasts.cli import Pace, Standing, _changed, _Rate
from tidings.broadcasts.schemas import BroadcastOut
from tidings.broadcasts.status import BroadcastStatus

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _broadcast(**counters: int) -> BroadcastOut:
    zero = dict.fromkeys(
        ("contacts_count", "recipients_count", "skipped_count", "sent_count", "failed_count",
         "delivered_count", "opened_count", "clicked_count", "played_count",
         "complained_count", "unsubscribed_count"),
        0,
    )  # fmt: skip
    return BroadcastOut(
        id=1, name="b", campaign_id=1, status=BroadcastStatus.SENDING, list_ids=[1],
        segment_ids=[], send_to_all=False, test=False, scheduled_at=NOW, started_at=NOW,
        completed_at=None, error_message=None, created_at=NOW, updated_at=NOW,
        fallback_count=0, **(zero | counters),
    )  # fmt: skip


def test_outcomes_of_recipients_never_pass_the_total() -> None:
    assert Standing.of(_broadcast(recipients_count=10, sent_count=4, failed_count=1)) == Standing(
        5, 10
    )
    # a bounce after sending counts in sent and in failed
    assert Standing.of(_broadcast(recipients_count=2, sent_count=2, failed_count=1)) == Standing(
        2, 2
    )
    assert Standing.of(_broadcast()) == Standing(0, 0)  # not started: no total yet


def test_rate_and_time_left_over_the_window() -> None:
    pace = Pace(window=10)
    assert pace.rate is None
    pace.add(0.0, 0)
    assert pace.rate is None
    assert pace.eta(Standing(0, 100)) is None
    pace.add(2.0, 20)
    assert pace.rate == 10
    assert pace.eta(Standing(20, 100)) == 8
    for second in range(3, 30):
        pace.add(float(second), 20 + 5 * (second - 2))
    assert pace.rate == 5  # only the last ten seconds count
    assert pace.eta(Standing(95, 100)) == 1
    assert pace.eta(Standing(0, 0)) is None


def test_a_line_is_printed_when_the_status_a_counter_or_the_progress_moves() -> None:
    base = {"status": "SENDING", "sent_count": 1, "updated_at": "t1",
            "progress": {"done": 1, "total": 3, "rate": 1.0, "eta_seconds": 2}}  # fmt: skip
    assert not _changed(base, base | {"updated_at": "t2"})
    assert not _changed(base, base | {"progress": base["progress"] | {"rate": 2.0}})
    assert _changed(base, base | {"status": "SENT"})
    assert _changed(base, base | {"sent_count": 2})
    assert _changed(base, base | {"progress": base["progress"] | {"done": 2}})


def test_the_bar_shows_the_rate_and_the_time_left_once_known() -> None:
    bar = Progress(_Rate())
    unknown = bar.add_task("send", total=None, rate=None, eta=None)
    known = bar.add_task("send", total=10_000, rate=2950.25, eta=3725.4)
    assert _Rate().render(bar.tasks[unknown]).plain == ""
    assert _Rate().render(bar.tasks[known]).plain == "2,950.2 msg/s, 1:02:05 left"
