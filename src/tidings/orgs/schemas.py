from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.patch import refuse_null

WallTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["21:00"])]
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ChannelName = Literal["email", "sms"]


class QuietHours(BaseModel):
    """Local wall times (HH:MM, the recipient's zone) when marketing waits: from `start`
    to `end`, across midnight when start is after end; start equal to end: none."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"start": "21:00", "end": "08:00"}]})  # fmt: skip

    start: WallTime
    end: WallTime


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
    timezone: str | None = Field(
        description="IANA zone for recipients of no known zone (local-time sends, quiet "
        "hours); null = UTC."
    )
    quiet_hours: dict[ChannelName, QuietHours] | None = Field(
        description="Per channel, when marketing messages wait (recipient's local time); a "
        "campaign's own `quiet_hours` replaces its channel's. Transactional ones never wait."
    )
    sending_days: list[Weekday] | None = Field(
        description="The days marketing may be sent on (recipient's local time); null = any."
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
    timezone: str | None = Field(default=None, max_length=64, description="IANA, e.g. Europe/Paris")
    quiet_hours: dict[ChannelName, QuietHours] | None = None
    sending_days: list[Weekday] | None = Field(default=None, min_length=1, max_length=7)

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
    timezone: str | None
    quiet_hours: dict[str, dict[str, str]] | None
    sending_days: list[str] | None
    content_retention_days: int | None
    event_retention_days: int | None
    message_retention_days: int | None
