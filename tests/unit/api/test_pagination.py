from __future__ import annotations

import base64

import pytest

from tidings.api.pagination import decode_cursor, encode_cursor, page_of
from tidings.errors import InvalidInput


def b64(text: bytes) -> str:
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


@pytest.mark.parametrize("last_id", [1, 42, 999_999, 2**53])
def test_cursor_round_trip(last_id: int) -> None:
    assert decode_cursor(encode_cursor(last_id)) == last_id


def test_cursor_is_url_safe_and_unpadded() -> None:
    for last_id in range(1, 300):
        cursor = encode_cursor(last_id)
        assert cursor.replace("-", "").replace("_", "").isalnum()


def test_cursor_is_opaque() -> None:
    assert "42" not in encode_cursor(42)


def test_no_cursor_is_the_first_page() -> None:
    assert decode_cursor(None) is None


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "42",
        "!!!",
        "é",
        b64(b"page:42"),
        b64(b"id:"),
        b64(b"id:forty-two"),
        b64(b"id:4.2"),
        b64(b"\xff\xfe"),
    ],
    ids=[
        "empty",
        "plain-number",
        "not-base64",
        "non-ascii",
        "wrong-prefix",
        "no-id",
        "id-not-a-number",
        "id-not-an-integer",
        "not-utf8",
    ],
)
def test_invalid_cursor_names_the_cursor(cursor: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_cursor(cursor)
    assert [e.field for e in caught.value.errors] == ["cursor"]


@pytest.mark.parametrize("forged", [2**63, 10**30], ids=["bigint-max-plus-one", "huge"])
def test_cursor_outside_the_key_range_is_invalid(forged: int) -> None:
    with pytest.raises(InvalidInput):
        decode_cursor(b64(f"id:{forged}".encode()))


def test_page_of_a_full_fetch_keeps_limit_items_and_points_past_the_last() -> None:
    items = [{"id": i} for i in (3, 5, 8, 13)]
    page, cursor = page_of(items, 3, key=lambda item: item["id"])
    assert page == items[:3]
    assert cursor is not None
    assert decode_cursor(cursor) == 8


@pytest.mark.parametrize("count", [0, 1, 3], ids=["empty", "short", "exactly-limit"])
def test_page_of_the_last_page_has_no_cursor(count: int) -> None:
    items = list(range(1, count + 1))
    page, cursor = page_of(items, 3, key=lambda item: item)
    assert page == items
    assert cursor is None


def test_page_of_returns_a_new_list() -> None:
    items = (1, 2)
    page, _ = page_of(items, 5, key=lambda item: item)
    assert page == [1, 2]
    assert isinstance(page, list)
