"""The body guard's JSON check, without I/O: what it refuses, naming the field."""

from __future__ import annotations

import pytest

from tidings.api.body import is_json, json_refusal


@pytest.mark.parametrize(
    ("raw", "field", "index"),
    [
        (b'{"name": "a\\u0000"}', "name", None),
        (b'{"a": {"b": ["x", "\\ud800"]}}', "a.b[1]", 1),
        (b'{"rows": [{"v": 1}, {"v": "\\uDFFF"}]}', "rows[1].v", 1),
        (b'{"k\\u0000": 1}', "k\x00", None),
        (b'"\\u0000"', "body", None),
        (b'{"n": "caf\xe9"}', "body", None),
        (b'{"n": "\xed\xa0\x80"}', "body", None),  # a surrogate encoded in UTF-8
    ],
)
def test_refused_naming_the_field(raw: bytes, field: str, index: int | None) -> None:
    refusal = json_refusal(raw)
    assert refusal is not None
    [error] = refusal.errors
    assert (error.field, error.index) == (field, index)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "party \\ud83c\\udf89"}',  # a pair is one character
        b'{"name": "a\\\\u0000"}',  # an escaped backslash, then the text u0000
        b'{"name": "caf\xc3\xa9"}',
        b"not json at all \\u0000",  # the route reports malformed JSON its own way
        b"",
    ],
)
def test_accepted(raw: bytes) -> None:
    assert json_refusal(raw) is None


def test_a_lenient_reader_gets_only_the_encoding_checked() -> None:
    assert json_refusal(b'{"n": "\\u0000"}', strings=False) is None
    assert json_refusal(b'{"n": "\xff"}', strings=False) is not None


@pytest.mark.parametrize(
    ("kind", "json"),
    [
        ("application/json", True),
        ("application/problem+json", True),
        ("text/plain", False),
        ("text/csv", False),
        ("", False),
        ("application/x-www-form-urlencoded", False),
    ],
)
def test_is_json(kind: str, json: bool) -> None:
    assert is_json(kind) is json
