"""Cursor pagination: `?limit=&cursor=`, answered as `{"data": [...], "next_cursor": ...}`.

A cursor is opaque to clients (base64 of the last id seen); pages are in id order, so
rows added while paging never shift a page.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from tidings.api.fields import MAX_ID
from tidings.errors import InvalidInput

T = TypeVar("T")
Item = TypeVar("Item")

LimitQuery = Annotated[int, Query(ge=1, le=500, description="Items per page (1–500).")]
CursorQuery = Annotated[
    str | None, Query(description="`next_cursor` of the previous page; omit for the first.")
]


class Page(BaseModel, Generic[T]):
    data: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"id:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, value = text.partition(":")
        last_id = int(value)
        if prefix != "id" or not 0 <= last_id <= MAX_ID:
            raise ValueError(text)
        return last_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput.field("cursor", "not a cursor this API returned") from None


def _by_id(row: Any) -> int:
    return int(row.id)


def paged(
    rows: Sequence[Item],
    limit: int,
    out: Callable[[Item], T],
    *,
    key: Callable[[Item], int] = _by_id,
) -> Page[T]:
    """A `limit + 1` fetch as the API's page: `out` applied to each kept row."""
    items, next_cursor = page_of(rows, limit, key)
    return Page(data=[out(item) for item in items], next_cursor=next_cursor)


def page_of(
    items: Sequence[Item], limit: int, key: Callable[[Item], int]
) -> tuple[list[Item], str | None]:
    """Split a `limit + 1` fetch into the page and the cursor of the next one."""
    if len(items) > limit:
        kept = list(items[:limit])
        return kept, encode_cursor(key(kept[-1]))
    return list(items), None
