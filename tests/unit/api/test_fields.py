"""The shared input types: the id range and date-times a timestamp column can hold."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import TypeAdapter, ValidationError

from tidings.api.fields import MAX_ID, Id, Moment, UtcMoment, id_in

ids = TypeAdapter(Id)
moments = TypeAdapter(Moment)
utc_moments = TypeAdapter(UtcMoment)


@pytest.mark.parametrize("value", [1, MAX_ID, "42"])
def test_an_id_in_range(value: object) -> None:
    assert ids.validate_python(value) == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [0, -1, MAX_ID + 1, 2**64])
def test_an_id_out_of_range(value: int) -> None:
    with pytest.raises(ValidationError):
        ids.validate_python(value)


@pytest.mark.parametrize(
    ("text", "number"),
    [("12", 12), (" 7 ", 7), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None), ("0", None),
     ("²", None), ("٣", None), ("-1", None), ("1e3", None), ("", None), ("9" * 400, None)],
)  # fmt: skip
def test_id_in_text(text: str, number: int | None) -> None:
    assert id_in(text) == number


def test_a_moment_is_answered_in_utc() -> None:
    moment = moments.validate_python("2026-12-07T20:00:00+02:00")
    assert moment == datetime(2026, 12, 7, 18, tzinfo=UTC)
    assert moment.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59-01:00",  # year 10000 once in UTC
        "0001-01-01T00:30:00+01:00",  # year 0 once in UTC
        "10000-01-01T00:00:00Z",
        "2026-12-07T20:00:00",  # no offset
    ],
)
def test_a_moment_utc_cannot_hold_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        moments.validate_python(text)


def test_a_utc_moment_reads_no_offset_as_utc_and_refuses_past_9999() -> None:
    assert utc_moments.validate_python("2026-12-07T20:00:00") == datetime(
        2026, 12, 7, 20, tzinfo=UTC
    )
    with pytest.raises(ValidationError):
        utc_moments.validate_python("9999-12-31T23:59:59-01:00")
