"""The calendar arithmetic of the due-time rule: a wall time in a zone, on the days the
clocks change in Europe, the US and Australia; quiet hours; sending days; the country
table."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from tidings.outbox.local import Timing, Window, country_zone, wall_instant
from tidings.outbox.rules import due_time, recipient_zone, timing


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "zone", "expected"),
    [
        # Europe springs forward on 2026-03-29 at 01:00 UTC: 09:30 is CEST / BST.
        ("2026-03-28", "Europe/Paris", "2026-03-28T08:30"),
        ("2026-03-29", "Europe/Paris", "2026-03-29T07:30"),
        ("2026-03-29", "Europe/London", "2026-03-29T08:30"),
        # and falls back on 2026-10-25.
        ("2026-10-25", "Europe/Paris", "2026-10-25T08:30"),
        # The US springs forward on 2026-03-08 and falls back on 2026-11-01.
        ("2026-03-07", "America/New_York", "2026-03-07T14:30"),
        ("2026-03-08", "America/New_York", "2026-03-08T13:30"),
        ("2026-11-01", "America/New_York", "2026-11-01T14:30"),
        # Sydney falls back on 2026-04-05 and springs forward on 2026-10-04.
        ("2026-04-04", "Australia/Sydney", "2026-04-03T22:30"),
        ("2026-04-05", "Australia/Sydney", "2026-04-04T23:30"),
        ("2026-10-04", "Australia/Sydney", "2026-10-03T22:30"),
    ],
)
def test_a_wall_time_on_a_change_day_is_its_local_time(day: str, zone: str, expected: str) -> None:
    assert wall_instant(date.fromisoformat(day), time(9, 30), zone) == utc(expected)


def test_a_time_that_does_not_exist_is_read_after_the_gap() -> None:
    # 02:30 on 2026-03-29 does not exist in Paris: it is 03:30 CEST (01:30 UTC).
    assert wall_instant(date(2026, 3, 29), time(2, 30), "Europe/Paris") == utc("2026-03-29T01:30")
    # 02:30 on 2026-03-08 in New York: 03:30 EDT.
    assert wall_instant(date(2026, 3, 8), time(2, 30), "America/New_York") == utc(
        "2026-03-08T07:30"
    )


def test_a_time_that_exists_twice_is_its_first_occurrence() -> None:
    # 02:30 on 2026-10-25 happens twice in Paris: first in CEST (00:30 UTC).
    assert wall_instant(date(2026, 10, 25), time(2, 30), "Europe/Paris") == utc("2026-10-25T00:30")
    # 02:30 on 2026-04-05 twice in Sydney: first in AEDT (15:30 UTC the day before).
    assert wall_instant(date(2026, 4, 5), time(2, 30), "Australia/Sydney") == utc(
        "2026-04-04T15:30"
    )


def test_the_next_local_time_is_today_or_tomorrow() -> None:
    nine = Timing(local_time=time(9, 30))
    # 07:00 in Paris: today's 09:30; 10:00 in Paris: tomorrow's, a DST day.
    assert nine.due(utc("2026-03-28T06:00"), "Europe/Paris") == utc("2026-03-28T08:30")
    assert nine.due(utc("2026-03-28T09:00"), "Europe/Paris") == utc("2026-03-29T07:30")


def test_a_date_already_past_there_sends_at_once() -> None:
    on = Timing(local_time=time(9, 30), local_date=date(2026, 3, 29))
    start = utc("2026-03-29T05:00")  # 16:00 in Sydney, 01:00 in New York
    assert on.due(start, "Australia/Sydney") == start
    assert on.due(start, "America/New_York") == utc("2026-03-29T13:30")


def test_quiet_hours_hold_marketing_until_they_end() -> None:
    quiet = Timing(quiet=Window(time(21), time(8)))
    assert quiet.due(utc("2026-03-28T21:30"), "Europe/Paris") == utc("2026-03-29T06:00")  # 08 CEST
    assert quiet.due(utc("2026-03-28T03:00"), "Europe/Paris") == utc("2026-03-28T07:00")  # 08 CET
    assert quiet.due(utc("2026-03-28T12:00"), "Europe/Paris") == utc("2026-03-28T12:00")
    daytime = Window(time(12), time(14))
    assert daytime.holds(time(12))
    assert not daytime.holds(time(14))
    assert not Window(time(0), time(0)).holds(time(0))  # start = end: no quiet hours


def test_sending_days_move_marketing_to_the_next_allowed_day() -> None:
    weekdays = Timing(quiet=Window(time(21), time(8)), days=frozenset(range(1, 6)))
    # Saturday 2026-03-28 at noon in Paris → Monday 08:00 CEST.
    assert weekdays.due(utc("2026-03-28T11:00"), "Europe/Paris") == utc("2026-03-30T06:00")


def test_transactional_messages_ignore_quiet_hours_and_days() -> None:
    made = timing(purpose="transactional", quiet=Window(time(21), time(8)), days=[1])
    assert not made.per_zone
    assert due_time(None, now=utc("2026-03-28T23:00"), zone="Europe/Paris", timing=made) == utc(
        "2026-03-28T23:00"
    )
    marketing = timing(purpose="marketing", quiet=Window(time(21), time(8)))
    assert due_time(
        None, now=utc("2026-03-28T23:00"), zone="Europe/Paris", timing=marketing
    ) == utc("2026-03-29T06:00")


class _Contact:
    def __init__(self, timezone: str | None, phone_country: str | None) -> None:
        self.timezone = timezone
        self.phone_country = phone_country


def test_the_recipient_zone_is_the_contacts_then_its_countrys_then_the_orgs() -> None:
    assert recipient_zone(_Contact("Asia/Tokyo", "FR"), org_zone="UTC") == "Asia/Tokyo"
    assert recipient_zone(_Contact(None, "FR"), org_zone="UTC") == "Europe/Paris"
    assert recipient_zone(_Contact(None, "US"), org_zone="America/Chicago") == "America/Chicago"
    assert recipient_zone(_Contact("Not/AZone", None), org_zone="UTC") == "UTC"
    assert country_zone("JP") == "Asia/Tokyo"
    assert country_zone("US") is None  # several zones
    assert country_zone(None) is None
