"""Wall-clock time in a recipient's time zone: the calendar arithmetic the due-time rule
(`outbox.rules.due_time`) is made of. Pure functions and value objects, no I/O.

    Timing.due(base, zone)   "09:30 local" on a date, or the next 09:30 after `base`;
                             then, for marketing, out of quiet hours and onto an allowed
                             sending day
    country_zone(country)    the one IANA zone of a country that has a single one

A wall time is turned into an instant with zoneinfo's `fold=0`: on a spring-forward day a
time in the gap (02:30 in Paris on the last Sunday of March) is read with the offset
before the change, i.e. as many minutes after the gap (03:30 CEST); on a fall-back day a
time that exists twice is its first occurrence (the summer-time one).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@functools.cache
def country_zones() -> dict[str, str]:
    """ISO 3166 alpha-2 → its IANA zone, for the countries phonenumbers places in exactly
    one zone and that have a calling code of their own (computed once). A calling code
    shared by several countries (+1, +7, +44, +39) names no country here: those numbers
    fall back to the org's zone unless the contact has its own."""
    from phonenumbers.phonenumberutil import COUNTRY_CODE_TO_REGION_CODE
    from phonenumbers.tzdata import TIMEZONE_DATA

    table: dict[str, str] = {}
    for calling_code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        if len(regions) != 1:
            continue
        # Calling codes are prefix-free: the entries of code 33 are those starting "33".
        found = {
            name
            for prefix, names in TIMEZONE_DATA.items()
            if prefix.startswith(str(calling_code))
            for name in names
            if name in known_zones()
        }
        if len(found) == 1:
            table[regions[0]] = next(iter(found))
    return table


def country_zone(country: str | None) -> str | None:
    return country_zones().get(country) if country else None


def wall_instant(day: date, at: time, zone_name: str) -> datetime:
    """The UTC instant of wall time `at` on `day` in the zone (fold=0: see the module)."""
    local = datetime.combine(day, at.replace(fold=0), tzinfo=zone(zone_name))
    return local.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Window:
    """Quiet hours: local wall times from `start` (included) to `end` (excluded); start
    after end spans midnight (21:00–08:00); start equal to end is no quiet hours."""

    start: time
    end: time

    def holds(self, at: time) -> bool:
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= at < self.end
        return at >= self.start or at < self.end

    @classmethod
    def parse(cls, raw: dict[str, str] | None) -> Window | None:
        if not raw:
            return None
        return cls(time.fromisoformat(raw["start"]), time.fromisoformat(raw["end"]))


@dataclass(frozen=True, slots=True)
class Timing:
    """How a send's due time moves in each recipient's zone.

    `local_time`: the wall time each message is due at, on `local_date` (None: the next
    one after the send's own due time); `quiet` and `days` (ISO weekdays 1–7 allowed;
    None = every day) hold back a message due outside them until they open, and are
    only set for marketing (`outbox.rules.timing`)."""

    local_time: time | None = None
    local_date: date | None = None
    quiet: Window | None = None
    days: frozenset[int] | None = None

    @property
    def per_zone(self) -> bool:
        """Whether the due time depends on the recipient's zone at all."""
        return self.local_time is not None or self.quiet is not None or self.days is not None

    def due(self, base: datetime, zone_name: str) -> datetime:
        """When a message otherwise due at `base` is due for a recipient in the zone."""
        at = base
        if self.local_time is not None:
            day = self.local_date or base.astimezone(zone(zone_name)).date()
            at = wall_instant(day, self.local_time, zone_name)
            if self.local_date is None and at < base:
                at = wall_instant(day + timedelta(days=1), self.local_time, zone_name)
            at = max(at, base)  # the date's 09:30 already past there: at once
        return self.open_at(at, zone_name)

    def open_at(self, at: datetime, zone_name: str) -> datetime:
        """`at`, or the first moment after it outside quiet hours on an allowed day."""
        for _ in range(16):  # a week of days and a window each: always enough
            local = at.astimezone(zone(zone_name))
            if self.days is not None and local.isoweekday() not in self.days:
                at = wall_instant(local.date() + timedelta(days=1), time(0), zone_name)
                continue
            if self.quiet is not None and self.quiet.holds(local.time()):
                opens = local.date() + timedelta(days=0 if local.time() < self.quiet.end else 1)
                at = wall_instant(opens, self.quiet.end, zone_name)
                continue
            return at
        return at
