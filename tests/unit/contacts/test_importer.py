from __future__ import annotations

import csv
from typing import Any

import pytest

from tidings.contacts.importer import header_columns, row_from_record, typed_cell
from tidings.contacts.normalize import ContactFields, validate_row
from tidings.errors import InvalidInput

# --- header_columns ----------------------------------------------------------------------


def test_header_maps_known_columns_case_insensitively() -> None:
    header = ["Email", "PHONE", "First_Name", "last_name", "Locale", "TimeZone"]
    assert list(header_columns(header).values()) == [
        "email",
        "phone",
        "first_name",
        "last_name",
        "locale",
        "timezone",
    ]


def test_header_maps_status_columns() -> None:
    assert header_columns(["email", "Email_Status", "sms_status"]) == {
        "email": "email",
        "Email_Status": "email_status",
        "sms_status": "sms_status",
    }


def test_header_maps_other_columns_to_attributes() -> None:
    assert header_columns(["email", "plan", "Seats"]) == {
        "email": "email",
        "plan": "attributes.plan",
        "Seats": "attributes.Seats",
    }


def test_header_accepts_the_attributes_prefix() -> None:
    assert header_columns(["attributes.plan", "attributes.email"]) == {
        "attributes.plan": "attributes.plan",
        "attributes.email": "attributes.email",
    }


def test_header_keys_are_the_raw_cells_and_targets_are_trimmed() -> None:
    assert header_columns([" email ", " plan"]) == {" email ": "email", " plan": "attributes.plan"}


@pytest.mark.parametrize(
    ("header", "position"),
    [
        (["email", "Company Name"], 1),
        (["1st", "email"], 0),
        (["email", "phone", ""], 2),
        (["email", "attributes.bad-name"], 1),
        (["email", "x" * 65], 1),
    ],
    ids=["space", "digit-first", "empty-cell", "prefixed-hyphen", "too-long"],
)
def test_header_rejects_invalid_attribute_names(header: list[str], position: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        header_columns(header)
    assert [e.field for e in caught.value.errors] == [f"header[{position}]"]
    assert "attribute name" in caught.value.errors[0].reason


@pytest.mark.parametrize(
    ("header", "position"),
    [
        (["email", "phone", "email"], 2),
        (["Email", "email"], 1),
        (["plan", "attributes.plan"], 1),
        (["email_status", "EMAIL_STATUS"], 1),
    ],
    ids=["same-cell", "different-case", "prefix-and-bare", "status"],
)
def test_header_rejects_duplicate_columns(header: list[str], position: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        header_columns(header)
    assert [e.field for e in caught.value.errors] == [f"header[{position}]"]
    assert "appears twice" in caught.value.errors[0].reason


def test_header_reports_every_bad_column() -> None:
    with pytest.raises(InvalidInput) as caught:
        header_columns(["email", "bad name", "email", "also bad"])
    assert [e.field for e in caught.value.errors] == ["header[1]", "header[2]", "header[3]"]


# --- row_from_record ---------------------------------------------------------------------

MAPPING = {
    "Email": "email",
    "phone": "phone",
    "first_name": "first_name",
    "email_status": "email_status",
    "sms_status": "sms_status",
    "plan": "attributes.plan",
    "seats": "attributes.seats",
}


def test_row_from_record_builds_a_contact_row() -> None:
    record: dict[str | None, Any] = {
        "Email": " ada@example.com ",
        "phone": "+33612345678",
        "first_name": "Ada",
        "plan": "pro",
        "seats": "12",
    }
    assert row_from_record(record, MAPPING) == {
        "email": "ada@example.com",
        "phone": "+33612345678",
        "first_name": "Ada",
        "attributes": {"plan": "pro", "seats": 12},
    }


def test_row_from_record_skips_empty_and_missing_cells() -> None:
    record: dict[str | None, Any] = {
        "Email": "ada@example.com",
        "phone": "",
        "first_name": "   ",
        "plan": None,  # a short line: csv fills missing cells with None
    }
    assert row_from_record(record, MAPPING) == {"email": "ada@example.com"}


def test_row_from_record_maps_status_columns_to_subscriptions() -> None:
    record: dict[str | None, Any] = {
        "Email": "ada@example.com",
        "email_status": "unsubscribed",
        "sms_status": "subscribed",
    }
    row = row_from_record(record, MAPPING)
    assert row["subscriptions"] == {"email": "unsubscribed", "sms": "subscribed"}
    assert "email_status" not in row
    assert "sms_status" not in row


def test_row_from_record_reports_extra_cells_as_an_unknown_field() -> None:
    reader = csv.DictReader(["email,plan", "ada@example.com,pro,surplus,more"])
    mapping = header_columns(reader.fieldnames or [])
    row = row_from_record(next(reader), mapping)
    assert row["email"] == "ada@example.com"

    result = validate_row(row, region=None)
    assert isinstance(result, list)
    assert [e.field for e in result] == ["extra_columns"]


def test_rows_from_csv_lines_validate() -> None:
    lines = [
        "Email,First_Name,email_status,plan",
        "Ada@Example.com,Ada,unsubscribed,pro",
        "grace@example.com,,,",
    ]
    reader = csv.DictReader(lines)
    mapping = header_columns(reader.fieldnames or [])
    rows = [validate_row(row_from_record(r, mapping), region=None) for r in reader]
    assert rows[0] == ContactFields(
        email="ada@example.com",
        phone=None,
        values={"first_name": "Ada", "email_status": "unsubscribed"},
        attributes={"plan": "pro"},
    )
    assert rows[1] == ContactFields(email="grace@example.com", phone=None)


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        ("12", 12),
        ("-3", -3),
        ("0", 0),
        ("1.5", 1.5),
        ("TRUE", True),
        ("false", False),
        ("007", "007"),
        ("1.10", "1.10"),
        ("+33612345678", "+33612345678"),
        ("2024-05-01", "2024-05-01"),
        ("1e3", "1e3"),
        ("1234567890123456789", "1234567890123456789"),
        ("pro", "pro"),
    ],
)
def test_typed_cell_types_only_what_reads_back_unchanged(cell: str, value: object) -> None:
    typed = typed_cell(cell)
    assert typed == value
    assert type(typed) is type(value)
