"""PATCH bodies: a field left out is unchanged, a field sent as null is cleared.

Services take a TypedDict of exactly the fields the request set (`changes_of`), so "absent"
and "null" stay different all the way down.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel

Changes = TypeVar("Changes")


def refuse_null(model: BaseModel, *fields: str) -> None:
    """Raise ValueError (a 422 naming the field) when a required field is sent as null."""
    for name in fields:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} cannot be null")


def changes_of(model: BaseModel, kind: type[Changes]) -> Changes:
    """The fields the request set, as the service's TypedDict of changes."""
    data: Any = model.model_dump(exclude_unset=True)
    return kind(**data)
