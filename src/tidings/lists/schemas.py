from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.fields import Id
from tidings.api.patch import refuse_null


class ListCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Survey panel Q3", "description": "NPS wave"}]},
    )

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)


class ListUpdate(BaseModel):
    """Fields left out are unchanged; `description: null` clears it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _name_not_null(self) -> ListUpdate:
        refuse_null(self, "name")
        return self


class ListChanges(TypedDict, total=False):
    name: str
    description: str | None


class ListOut(BaseModel):
    id: int
    name: str
    description: str | None
    contacts_count: int
    created_at: datetime
    updated_at: datetime


class MembersChange(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"contact_ids": [1, 2]}]}
    )

    contact_ids: list[Id] = Field(min_length=1, max_length=10_000)


class MembersChanged(BaseModel):
    changed: int = Field(description="Memberships added (or removed) by this call.")
