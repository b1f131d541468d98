"""Validation and normalisation of one contact row, with no I/O.

`validate_row` turns a raw mapping (JSON row, CSV row) into `ContactFields` or a list of
`FieldError`s naming each bad field. Emails are syntax-checked by email-validator (no DNS)
and lower-cased; phones become E.164 with phonenumbers, reading national numbers in the
org's region, and give the contact's `phone_country` (the number's ISO 3166 region, which
per-org SMS country allowlists are checked against).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email
from pydantic import ValidationError

from tidings.contacts.schemas import ContactIn
from tidings.errors import FieldError

ATTRIBUTE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
MAX_ATTRIBUTES_BYTES = 16_384
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NO_CONTROL_FIELDS = ("first_name", "last_name", "locale", "timezone")


@dataclass(slots=True)
class ContactFields:
    """A valid row. `values` holds only the columns the row set; `attributes` is a patch."""

    email: str | None
    phone: str | None
    values: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] | None = None
    phone_country: str | None = None


# The common address — ASCII dot-atom local part, ASCII host name with a letters-only
# top-level label, within every length limit — is one email-validator accepts unchanged
# but for case, so it is checked by one regular expression (a few µs) instead of the
# full validator (tens of µs: a 500-recipient request spent a fifth of its CPU there).
# Anything else, and special-use domains (.test, .local, … which the validator refuses),
# goes through the validator. tests/unit/contacts/test_normalize.py checks they agree.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_PLAIN_EMAIL = re.compile(
    rf"(?=[^@]{{1,64}}@)(?=.{{1,254}}\Z){_ATEXT}(?:\.{_ATEXT})*@(?=.{{1,253}}\Z)"
    rf"(?:{_LABEL}\.)+[A-Za-z]{{2,63}}\Z"
)


def _plain_email(raw: str) -> str | None:
    if _PLAIN_EMAIL.match(raw) is None or "--" in raw.rpartition("@")[2]:
        return None  # "--" in a label: IDNA rules the validator applies
    domain = raw.rpartition("@")[2].lower()
    for special in email_validator.SPECIAL_USE_DOMAIN_NAMES:
        if domain == special or domain.endswith("." + special):
            return None
    return raw.lower()


def normalize_email(raw: str) -> str:
    """The address in canonical, lower-cased form. Raises ValueError with the reason."""
    plain = _plain_email(raw)
    if plain is not None:
        return plain
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


def normalize_phone(raw: str, region: str | None) -> str:
    """The number in E.164. National numbers are read in `region`. Raises ValueError."""
    return _e164(parse_phone(raw, region))


def parse_phone(raw: str, region: str | None) -> phonenumbers.PhoneNumber:
    """The valid number `raw` names; national numbers are read in `region`. Raises ValueError."""
    text = raw.strip()
    if not text.startswith("+") and region is None:
        raise ValueError(
            "not in international format (+ and country code), and the org has no phone region"
        )
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number for its country")
    return number


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def phone_country(number: phonenumbers.PhoneNumber) -> str | None:
    """The ISO 3166 alpha-2 region the number belongs to (+44 7911 … is GG, not GB); None
    for numbers of no country (+800 freephone, +881 satellite: phonenumbers says "001")."""
    region = phonenumbers.region_code_for_number(number)
    return region if region is not None and len(region) == 2 else None


@lru_cache(maxsize=1)
def _timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def _pydantic_errors(exc: ValidationError) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "contact"
        errors.append(FieldError(loc, err["msg"]))
    return errors


def attributes_size(attributes: dict[str, Any]) -> int:
    """Bytes of the attributes as stored: compact JSON, UTF-8."""
    return len(json.dumps(attributes, separators=(",", ":"), ensure_ascii=False).encode())


def too_large(attributes: dict[str, Any], limit: int = MAX_ATTRIBUTES_BYTES) -> bool:
    """`attributes_size(attributes) > limit`, without encoding the common small object.

    In compact UTF-8 JSON a character takes at most 6 bytes (`\\u001f`), a number at most
    24 (`-1.7976931348623157e+308`; an int of 64 bits 20), true/false/null at most 5;
    with quotes, colon and comma that bounds a flat object's size. Only an object whose
    bound passes `limit`, or that nests, or holds a bigger int, is encoded to be sure.
    """
    bound = 2
    for name, value in attributes.items():
        kind = type(value)
        if kind is str:
            bound += 6 * len(value) + 2
        elif kind is bool or value is None:
            bound += 5
        elif kind is float or (kind is int and -(2**63) <= value < 2**63):
            bound += 24
        else:
            bound = limit + 1  # nested, or a big int: encode it
        bound += 6 * len(name) + 4 if type(name) is str else limit + 1
        if bound > limit:
            break
    return bound > limit and attributes_size(attributes) > limit


def _check_attributes(attributes: dict[str, Any]) -> list[FieldError]:
    errors = [
        FieldError(
            f"attributes.{name}", "name must be letters, digits or _, ≤ 64, not a digit first"
        )
        for name in attributes
        if not ATTRIBUTE_NAME.match(name)
    ]
    if too_large(attributes):
        errors.append(FieldError("attributes", f"larger than {MAX_ATTRIBUTES_BYTES} bytes as JSON"))
    return errors


def validate_row(raw: object, *, region: str | None) -> ContactFields | list[FieldError]:
    """Validate one row; the errors carry no index (the caller knows it)."""
    if not isinstance(raw, Mapping):
        return [FieldError("contact", "must be an object")]
    try:
        row = ContactIn.model_validate(raw)
    except ValidationError as exc:
        return _pydantic_errors(exc)

    errors: list[FieldError] = []
    email = phone = country = None
    if row.email:
        try:
            email = normalize_email(row.email)
        except ValueError as exc:
            errors.append(FieldError("email", str(exc)))
    if row.phone:
        try:
            number = parse_phone(row.phone, region)
        except ValueError as exc:
            errors.append(FieldError("phone", str(exc)))
        else:
            phone, country = _e164(number), phone_country(number)
    if not row.email and not row.phone:
        errors.append(FieldError("email", "a contact needs an email or a phone"))
    for name in _NO_CONTROL_FIELDS:
        value = getattr(row, name)
        if value and _CONTROL.search(value):
            errors.append(FieldError(name, "must not contain control characters (CR, LF, NUL…)"))
    if row.timezone and row.timezone not in _timezones():
        errors.append(FieldError("timezone", f"unknown IANA time zone {row.timezone!r}"))
    if row.attributes is not None:
        errors.extend(_check_attributes(row.attributes))
    if errors:
        return errors

    values: dict[str, Any] = {
        name: getattr(row, name)
        for name in ("first_name", "last_name", "locale", "timezone")
        if name in row.model_fields_set
    }
    if row.subscriptions is not None:
        if row.subscriptions.email is not None:
            values["email_status"] = row.subscriptions.email.value
        if row.subscriptions.sms is not None:
            values["sms_status"] = row.subscriptions.sms.value
    return ContactFields(
        email=email, phone=phone, values=values, attributes=row.attributes, phone_country=country
    )
