"""The input types every route shares, so that each rule on them is written once.

- `Id`: an object's id, in a path, a query or a body. Keys are signed 64-bit integers on
  both databases; a number outside 1 … 2⁶³−1 can name nothing, and sent to the database it
  would fail the statement (an overflow, not a miss). Out of range is answered like any
  invalid input: 422 naming the field in a query or a body, 404 in a path
  (`api.problems`: a path that names nothing is not found).
- `VersionNumber`: a number counted from 1 in a 32-bit column (a template's version).
- `Moment`: a date-time with an offset whose UTC instant a timestamp column can hold
  (years 1 to 9999 once moved to UTC: `9999-12-31T23:59:59-01:00` is not), answered in
  UTC. `UtcMoment` is the same where a date-time without an offset is read as UTC (the
  dialects whose documents say so). Any other year is refused by pydantic's own parsing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Final

from annotated_types import Interval
from pydantic import AfterValidator, AwareDatetime

MAX_ID: Final = 2**63 - 1  # keys are signed 64-bit integers on both engines

Id = Annotated[int, Interval(ge=1, le=MAX_ID)]
"""An object's id: 1 … 2⁶³−1."""

NO_NUL: Final = "^[^\\x00]*$"
"""A query text's pattern: no text column holds NUL (PostgreSQL refuses it even as a
parameter), so a NUL is a 422 naming the parameter, not a failed statement."""


def id_in(text: str) -> int | None:
    """The id a text names: ASCII digits (not `²` nor `٣`, which `str.isdigit` takes)
    within 1 … 2⁶³−1; None otherwise."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_ID)):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


VersionNumber = Annotated[int, Interval(ge=1, le=2**31 - 1)]
"""A template version's number: 1 … 2³¹−1."""


def in_utc(moment: datetime) -> datetime:
    """The same instant in UTC; ValueError (a 422 naming the field) when UTC cannot hold it."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("date-time out of range: its UTC year must be 1 to 9999") from None


Moment = Annotated[AwareDatetime, AfterValidator(in_utc)]
"""A date-time with an offset, within the years 1 … 9999 in UTC, answered in UTC."""


def naive_as_utc(moment: datetime) -> datetime:
    """A date-time without an offset read as UTC; with one, the same instant in UTC."""
    return in_utc(moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment)


UtcMoment = Annotated[datetime, AfterValidator(naive_as_utc)]
"""A date-time, without an offset read as UTC, within the years 1 … 9999 in UTC."""
