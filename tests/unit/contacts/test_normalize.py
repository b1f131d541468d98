from __future__ import annotations

import random
from typing import Any

import email_validator.deliverability
import pytest

from tidings.contacts.normalize import (
    MAX_ATTRIBUTES_BYTES,
    ContactFields,
    _plain_email,
    attributes_size,
    normalize_email,
    normalize_phone,
    too_large,
    validate_row,
)
from tidings.errors import FieldError


def valid(raw: object, *, region: str | None = None) -> ContactFields:
    result = validate_row(raw, region=region)
    assert isinstance(result, ContactFields), result
    return result


def error_fields(raw: object, *, region: str | None = None) -> list[str]:
    result = validate_row(raw, region=region)
    assert isinstance(result, list), result
    return [e.field for e in result]


# --- normalize_email ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
        ("ADA+news@EXAMPLE.org", "ada+news@example.org"),
    ],
    ids=["already-canonical", "mixed-case", "plus-tag"],
)
def test_normalize_email_is_canonical_lower_case(raw: str, expected: str) -> None:
    assert normalize_email(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "ada",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "ada lovelace@example.com",
        "Ada <ada@example.com>",
        "ada@example",
        "",
    ],
    ids=["no-at", "no-domain", "no-local", "two-ats", "space", "display-name", "no-tld", "empty"],
)
def test_normalize_email_rejects_bad_syntax(raw: str) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        normalize_email(raw)


def test_normalize_email_does_no_dns_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:
        raise AssertionError("DNS lookup attempted")

    monkeypatch.setattr(email_validator.deliverability, "validate_email_deliverability", no_dns)
    assert normalize_email("ada@no-such-domain-tidings.com") == "ada@no-such-domain-tidings.com"


# --- normalize_phone ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+33 6 12 34 56 78", None, "+33612345678"),
        ("+33612345678", None, "+33612345678"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("  06.12.34.56.78 ", "FR", "+33612345678"),
        ("+44 20 7031 3000", "FR", "+442070313000"),
        ("(650) 253-0000", "US", "+16502530000"),
    ],
    ids=["international", "e164", "national-fr", "dotted-padded", "foreign-with-region", "us"],
)
def test_normalize_phone_gives_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize_phone(raw, region) == expected


def test_normalize_phone_national_number_needs_a_region() -> None:
    with pytest.raises(ValueError, match="international format"):
        normalize_phone("06 12 34 56 78", None)


@pytest.mark.parametrize(
    ("raw", "region", "reason"),
    [
        ("hello", "FR", "not a phone number"),
        ("+33 1", None, "not a phone number"),
        ("+33 6 12 34 56 78 90", None, "not a valid phone number"),
        ("01 23", "FR", "not a valid phone number"),
    ],
    ids=["letters", "too-short", "too-long", "short-national"],
)
def test_normalize_phone_rejects_invalid_numbers(raw: str, region: str | None, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_phone(raw, region)


# --- validate_row: errors ----------------------------------------------------------------


@pytest.mark.parametrize("raw", [["ada@example.com"], "ada@example.com", None, 3], ids=repr)
def test_validate_row_rejects_non_object(raw: object) -> None:
    assert validate_row(raw, region=None) == [FieldError("contact", "must be an object")]


def test_validate_row_names_unknown_field() -> None:
    assert error_fields({"email": "ada@example.com", "nickname": "Ada"}) == ["nickname"]


@pytest.mark.parametrize(
    "raw",
    [{"first_name": "Ada"}, {"email": "   ", "phone": ""}, {}],
    ids=["names-only", "blank-keys", "empty"],
)
def test_validate_row_needs_email_or_phone(raw: dict[str, Any]) -> None:
    result = validate_row(raw, region=None)
    assert isinstance(result, list)
    assert [e.field for e in result] == ["email"]
    assert "email or a phone" in result[0].reason


@pytest.mark.parametrize(
    "bad", ["Ada\nBob", "Ada\rBob", "Ada\x00", "Ada\x1b[31m"], ids=["LF", "CR", "NUL", "ESC"]
)
@pytest.mark.parametrize("field", ["first_name", "last_name"])
def test_validate_row_rejects_control_characters_in_names(field: str, bad: str) -> None:
    assert error_fields({"email": "ada@example.com", field: bad}) == [field]


def test_validate_row_rejects_unknown_timezone() -> None:
    result = validate_row({"email": "ada@example.com", "timezone": "Mars/Olympus"}, region=None)
    assert isinstance(result, list)
    assert [e.field for e in result] == ["timezone"]
    assert "Mars/Olympus" in result[0].reason


def test_validate_row_rejects_bad_locale() -> None:
    assert error_fields({"email": "ada@example.com", "locale": "english!"}) == ["locale"]


@pytest.mark.parametrize(
    "name",
    ["Company Name", "1st", "plan-type", "é", "x" * 65, ""],
    ids=["space", "digit-first", "hyphen", "non-ascii", "too-long", "empty"],
)
def test_validate_row_rejects_bad_attribute_names(name: str) -> None:
    fields = error_fields({"email": "ada@example.com", "attributes": {name: 1, "ok_name": 2}})
    assert fields == [f"attributes.{name}"]


def test_validate_row_accepts_attributes_of_exactly_the_limit() -> None:
    # {"blob":"…"} is 11 characters around the value.
    row = {"email": "ada@example.com", "attributes": {"blob": "x" * (MAX_ATTRIBUTES_BYTES - 11)}}
    assert valid(row).attributes == row["attributes"]


def test_validate_row_rejects_attributes_over_the_limit() -> None:
    row = {"email": "ada@example.com", "attributes": {"blob": "x" * (MAX_ATTRIBUTES_BYTES - 10)}}
    result = validate_row(row, region=None)
    assert isinstance(result, list)
    assert [e.field for e in result] == ["attributes"]
    assert str(MAX_ATTRIBUTES_BYTES) in result[0].reason


def _random_value(rng: random.Random) -> object:
    alphabet = 'aZ09 _"\\\n\x00\x1féß€😀'
    return rng.choice(
        [
            lambda: "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))),
            lambda: rng.randrange(-(2**70), 2**70),
            lambda: rng.randrange(-1000, 1000),
            lambda: rng.uniform(-1e308, 1e308),
            lambda: rng.choice([True, False, None, float("inf"), float("nan"), -0.0]),
            lambda: {"nested": [1, "two", None]},
        ]
    )()


def test_too_large_agrees_with_the_encoded_size() -> None:
    """The bound that spares encoding never changes the answer: 3,000 random objects of
    every kind of value (escapes, astral characters, big ints, floats, nesting), each
    against limits just under, at and just over its real size, and the default limit."""
    rng = random.Random(7)
    for _ in range(3_000):
        names = ["".join(rng.choice("ab_é") for _ in range(rng.randrange(1, 8))) for _ in range(8)]
        attributes = {name: _random_value(rng) for name in names[: rng.randrange(0, 9)]}
        size = attributes_size(attributes)
        for limit in (size - 1, size, size + 1, size * 7, MAX_ATTRIBUTES_BYTES):
            assert too_large(attributes, limit) == (size > limit), (attributes, limit)


def test_validate_row_rejects_attributes_that_are_not_an_object() -> None:
    assert error_fields({"email": "ada@example.com", "attributes": [1, 2]}) == ["attributes"]


def test_validate_row_rejects_unknown_subscription_status() -> None:
    fields = error_fields({"email": "ada@example.com", "subscriptions": {"email": "yes"}})
    assert fields == ["subscriptions.email"]


def test_validate_row_reports_every_bad_field_at_once() -> None:
    row = {
        "email": "not-an-email",
        "phone": "06 12 34 56 78",
        "first_name": "A\nB",
        "timezone": "Nowhere/Town",
        "attributes": {"bad name": 1},
    }
    assert sorted(error_fields(row)) == [
        "attributes.bad name",
        "email",
        "first_name",
        "phone",
        "timezone",
    ]


def test_validate_row_errors_carry_no_index() -> None:
    result = validate_row({"email": "nope"}, region=None)
    assert isinstance(result, list)
    assert all(e.index is None for e in result)


# --- validate_row: valid rows ------------------------------------------------------------


def test_validate_row_normalizes_email_and_phone() -> None:
    fields = valid({"email": " Ada@Example.COM ", "phone": "06 12 34 56 78"}, region="FR")
    assert (fields.email, fields.phone) == ("ada@example.com", "+33612345678")


def test_validate_row_phone_only_has_no_email() -> None:
    fields = valid({"phone": "+33 6 12 34 56 78"})
    assert (fields.email, fields.phone) == (None, "+33612345678")


def test_validate_row_values_hold_only_the_fields_the_row_set() -> None:
    fields = valid({"email": "ada@example.com", "first_name": " Ada ", "last_name": None})
    assert fields.values == {"first_name": "Ada", "last_name": None}
    assert fields.attributes is None


def test_validate_row_with_keys_only_has_empty_values() -> None:
    assert valid({"email": "ada@example.com"}).values == {}


def test_validate_row_keeps_locale_and_timezone() -> None:
    fields = valid(
        {"email": "ada@example.com", "locale": "en-GB", "timezone": "Europe/London"},
    )
    assert fields.values == {"locale": "en-GB", "timezone": "Europe/London"}


@pytest.mark.parametrize(
    ("subscriptions", "expected"),
    [
        ({"email": "unsubscribed"}, {"email_status": "unsubscribed"}),
        ({"sms": "subscribed"}, {"sms_status": "subscribed"}),
        (
            {"email": "subscribed", "sms": "unsubscribed"},
            {"email_status": "subscribed", "sms_status": "unsubscribed"},
        ),
        ({}, {}),
    ],
    ids=["email-only", "sms-only", "both", "neither"],
)
def test_validate_row_maps_subscriptions_to_status_values(
    subscriptions: dict[str, str], expected: dict[str, str]
) -> None:
    fields = valid({"email": "ada@example.com", "subscriptions": subscriptions})
    assert fields.values == expected


def test_validate_row_passes_attributes_as_a_patch() -> None:
    attributes = {"plan": "pro", "seats": 12, "old_key": None}
    assert valid({"email": "ada@example.com", "attributes": attributes}).attributes == attributes


def _candidates(count: int) -> list[str]:
    """Addresses near the edges of the fast path: odd characters, dots, hyphens, long
    and numeric labels, special-use and IDNA-looking domains."""
    rng = random.Random(6)
    local_chars = "aZ09._-+!#$%&'*/=?^`{|}~\"() ,:;<>[]\\é\n"
    domain_chars = "az09.-_é"
    tlds = ["com", "io", "c0m", "x", "test", "local", "localhost", "onion", "arpa", "a1", ""]
    out = []
    for _ in range(count):
        odd = 1.0 if rng.random() < 0.3 else 0.05  # else mostly letters and digits

        def pick(chars: str, odd: float = odd) -> str:
            return rng.choice(chars if rng.random() < odd else "abz09")

        local = "".join(pick(local_chars) for _ in range(rng.choice([1, 3, 8, 64, 65])))
        labels = [
            "".join(pick(domain_chars) for _ in range(rng.choice([1, 2, 5, 63, 64])))
            for _ in range(rng.choice([1, 2, 3]))
        ]
        if rng.random() < 0.2:
            labels[0] = "xn--" + labels[0]
        domain = ".".join([*labels, rng.choice(tlds)]).strip(".") if rng.random() < 0.9 else ""
        out.append(f"{local}@{domain}" if rng.random() < 0.97 else local + domain)
    return out


@pytest.mark.parametrize(
    "address",
    [
        "Ada@Example.COM",
        "a.b+tag@sub.example.org",
        "o'brien@example.ie",
        "x@example.test",
        "x@foo.localhost",
        "x@xn--bcher-kva.example",
        "x@ex--ample.com",
        "x@1.2.3.4",
        "a" * 64 + "@example.com",
        "a" * 65 + "@example.com",
        "a@" + "b" * 63 + ".com",
        "a@" + "b" * 64 + ".com",
        "a@" + ".".join(["b" * 60] * 4) + ".com",
        " a@example.com",
        "a@example.com\n",
        "a..b@example.com",
        "a.@example.com",
        "a@-example.com",
        "a@example-.com",
        "a@example.c0m",
    ],
)
def test_the_fast_path_agrees_with_email_validator(address: str) -> None:
    _agree(address)


def test_the_fast_path_agrees_with_email_validator_on_random_addresses() -> None:
    fast = 0
    for address in _candidates(20_000):
        fast += _agree(address)
    assert fast > 300  # the sample does reach the fast path (555 of 20,000 when written)


def _agree(address: str) -> bool:
    """The fast path, when it answers, answers what the validator does."""
    plain = _plain_email(address)
    if plain is None:
        return False
    assert normalize_email(address) == plain
    result = email_validator.validate_email(address, check_deliverability=False)
    assert result.normalized.lower() == plain, address
    return True
