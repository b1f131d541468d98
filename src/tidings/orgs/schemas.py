from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.patch import refuse_null


class OrgOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    login: str = Field(description="The org's login for `api-login` headers and HTTP Basic.")
    phone_region: str | None = Field(
        description="ISO 3166 region for reading national phone numbers; null = international only."
    )
    sms_countries: list[str] | None = Field(
        description="ISO 3166 alpha-2 codes SMS may go to; null = every country. A message to "
        "a phone of another country is skipped (reason `country not allowed`)."
    )
    content_retention_days: int | None = Field(
        description="Days a message's content (the sink's copy, its variables) is kept; "
        "null = forever."
    )
    event_retention_days: int | None = Field(
        description="Days events (and the webhook deliveries made of them) are kept; "
        "null = forever."
    )
    message_retention_days: int | None = Field(
        description="Days a finished message's row (with its links, events and content) is "
        "kept; null = forever."
    )
    created_at: datetime
    updated_at: datetime


class OrgUpdate(BaseModel):
    """Fields left out are unchanged; `phone_region: null` clears the region."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Acme", "phone_region": "FR", "sms_countries": ["FR", "BE"]}]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    phone_region: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    sms_countries: list[str] | None = Field(
        default=None,
        max_length=300,
        description="ISO 3166 alpha-2 codes (any case); null = every country, [] = none.",
    )

    content_retention_days: int | None = Field(default=None, ge=1, le=36_500)
    event_retention_days: int | None = Field(default=None, ge=1, le=36_500)
    message_retention_days: int | None = Field(default=None, ge=1, le=36_500)

    @model_validator(mode="after")
    def _name_not_null(self) -> OrgUpdate:
        refuse_null(self, "name")
        return self


class OrgChanges(TypedDict, total=False):
    name: str
    phone_region: str | None
    sms_countries: list[str] | None
    content_retention_days: int | None
    event_retention_days: int | None
    message_retention_days: int | None
