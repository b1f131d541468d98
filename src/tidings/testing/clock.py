"""A clock that moves only when the test moves it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class Clock:
    """Simulated time, for every part of Tidings that takes a clock.

    Calling it gives the time as an aware UTC datetime: pass the clock itself where a
    `clock: Callable[[], datetime]` is taken (the dispatcher, the webhook sender).
    `epoch` gives the same instant as epoch seconds: pass `clock.epoch` where a
    `Callable[[], float]` is taken (the connection limiter).

    The time starts at `start` (default: the wall clock's time when the clock is made, so
    rows the database stamps with its own time are not in this clock's future) and moves
    by `advance`, or by setting `now` or `elapsed`. Time is kept to the microsecond, as
    the database keeps it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.start = datetime.now(UTC) if start is None else _aware(start)
        self._now = self.start

    def __call__(self) -> datetime:
        return self._now

    def epoch(self) -> float:
        return self._now.timestamp()

    @property
    def now(self) -> datetime:
        return self._now

    @now.setter
    def now(self, when: datetime) -> None:
        self._now = _aware(when)

    @property
    def elapsed(self) -> float:
        """Seconds from `start` to `now`; setting it moves `now` to that many after `start`."""
        return (self._now - self.start).total_seconds()

    @elapsed.setter
    def elapsed(self, seconds: float) -> None:
        self._now = self.start + timedelta(seconds=seconds)

    def advance(self, by: float | timedelta) -> None:
        """Move forward by `by` (seconds, or a timedelta); a negative value moves back."""
        self._now += by if isinstance(by, timedelta) else timedelta(seconds=by)


def _aware(when: datetime) -> datetime:
    # Tidings stores timezone-aware UTC only (db/base.py): a naive time fails here, where
    # the test set it, rather than where the code under test first writes it.
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"a Clock keeps aware datetimes, not the naive {when.isoformat()}")
    return when
