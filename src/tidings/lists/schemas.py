from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ListCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "Survey panel Q3", "description": "NPS wave"}]},
    )

    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)


class ListUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)


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

    contact_ids: list[int] = Field(min_length=1, max_length=10_000)


class MembersChanged(BaseModel):
    changed: int = Field(description="Memberships added (or removed) by this call.")
