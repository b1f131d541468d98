from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.patch import refuse_null

FILTER_EXAMPLE: dict[str, Any] = {
    "and": [
        {"field": "attributes.plan", "op": "eq", "value": "pro"},
        {"field": "attributes.seats", "op": "gte", "value": 10},
        {"field": "email_status", "op": "eq", "value": "subscribed"},
    ]
}
FILTER_DOC = "A filter tree (see docs/segments.md): and/or/not, in_list, field conditions."


class SegmentCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Pro accounts", "filter": FILTER_EXAMPLE}]},
    )

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    filter: dict[str, Any] = Field(description=FILTER_DOC)


class SegmentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    filter: dict[str, Any] | None = Field(default=None, description=FILTER_DOC)

    @model_validator(mode="after")
    def _required_not_null(self) -> SegmentUpdate:
        refuse_null(self, "name", "filter")
        return self


class SegmentChanges(TypedDict, total=False):
    name: str
    description: str | None
    filter: dict[str, Any]


class FilterCount(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"filter": FILTER_EXAMPLE}]}
    )

    filter: dict[str, Any] = Field(description=FILTER_DOC)


class SegmentOut(BaseModel):
    id: int
    name: str
    description: str | None
    filter: dict[str, Any]
    contacts_count: int = Field(description="Live (not erased) contacts matching now.")
    created_at: datetime
    updated_at: datetime


class CountOut(BaseModel):
    contacts_count: int
