from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tidings.api.patch import refuse_null
from tidings.event_types import EVENT_TYPES

ALL = "*"
_EXAMPLE: dict[str, Any] = {
    "url": "https://hooks.example.com/tidings",
    "event_types": ["delivered", "bounced", "complained"],
}
_URL = Field(
    default=..., min_length=1, max_length=2000, description="http(s), resolving to public addresses"
)
_TYPES_HELP = f'Event types to receive, or `["*"]` for all: {", ".join(EVENT_TYPES)}.'


def _event_types(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    if ALL in value:
        if value != [ALL]:
            raise ValueError('"*" stands alone: it already means every event type')
        return value
    unknown = sorted(set(value) - set(EVENT_TYPES))
    if unknown:
        raise ValueError(f"unknown event types {unknown}; known: {', '.join(EVENT_TYPES)}")
    return sorted(set(value), key=EVENT_TYPES.index)


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    url: str = _URL
    event_types: list[str] = Field(min_length=1, max_length=20, description=_TYPES_HELP)
    enabled: bool = True

    _types = field_validator("event_types")(_event_types)


class WebhookUpdate(BaseModel):
    """Fields left out are unchanged; a new `url` is checked again."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, min_length=1, max_length=2000)
    event_types: list[str] | None = Field(
        default=None, min_length=1, max_length=20, description=_TYPES_HELP
    )
    enabled: bool | None = None

    _types = field_validator("event_types")(_event_types)

    @model_validator(mode="after")
    def _not_null(self) -> WebhookUpdate:
        refuse_null(self, "url", "event_types", "enabled")
        return self


class WebhookChanges(TypedDict, total=False):
    url: str
    event_types: list[str]
    enabled: bool


class WebhookOut(BaseModel):
    id: int
    url: str
    event_types: list[str]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description=(
            "Signs every delivery (Standard Webhooks, `whsec_…`). Shown in this answer only: "
            "store it now."
        )
    )


class DeliveryOut(BaseModel):
    id: int
    endpoint_id: int
    webhook_id: str = Field(description="The `webhook-id` header of every attempt.")
    event_id: int | None
    event_type: str
    payload: dict[str, Any]
    status: str = Field(description="pending, delivered or failed")
    attempts: int
    next_attempt_at: datetime | None = Field(description="When pending: the next attempt.")
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
