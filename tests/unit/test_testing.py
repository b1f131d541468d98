"""The fakes of `tidings.testing` themselves: other tests trust them to behave as said."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from tidings.db.base import utcnow
from tidings.testing import Clock

T0 = datetime(2027, 1, 15, 8, tzinfo=UTC)


# ── Clock ───────────────────────────────────────────────────────────────────────────


def test_a_clock_stands_still_until_moved() -> None:
    clock = Clock(T0)

    assert clock() == clock() == clock.now == clock.start == T0
    assert clock.epoch() == 1_800_000_000.0
    assert clock.elapsed == 0.0


def test_a_clock_moves_by_advance_now_and_elapsed() -> None:
    clock = Clock(T0)

    clock.advance(1.5)
    assert clock() == T0 + timedelta(seconds=1.5)
    clock.advance(timedelta(minutes=1))
    assert clock.elapsed == 61.5
    assert clock.epoch() == 1_800_000_061.5
    clock.now = T0 + timedelta(hours=1)
    assert clock.elapsed == 3600.0
    clock.elapsed = 0.0625
    assert clock() == T0 + timedelta(microseconds=62_500)
    assert clock.start == T0


def test_a_clock_starts_at_the_wall_clock_by_default() -> None:
    before = utcnow()
    clock = Clock()
    assert before <= clock() <= utcnow()
    assert clock().tzinfo is not None


def test_a_clock_keeps_the_instant_it_is_given_in_any_zone() -> None:
    zurich = datetime(2027, 1, 15, 9, tzinfo=timezone(timedelta(hours=1)))
    assert Clock(zurich).epoch() == Clock(T0).epoch()


def test_a_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        Clock(datetime(2027, 1, 15, 8))
    clock = Clock(T0)
    with pytest.raises(ValueError, match="naive"):
        clock.now = datetime(2027, 1, 15, 9)
    assert clock() == T0
