from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


class MessageOut(BaseModel):
    """One recipient's message. Final statuses: sent, failed, skipped, cancelled (with
    `reason` for the last three); queued, sending and held are on their way."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    broadcast_id: int | None
    campaign_id: int | None
    contact_id: int | None
    channel: str
    recipient: str | None
    status: str
    test: bool = Field(validation_alias="is_test", description="Only ever reaches the sink.")
    reason: str | None
    attempts: int
    provider_id: str | None
    segments: int | None
    created_at: datetime
    due_at: datetime
    sent_at: datetime | None
    finished_at: datetime | None


class SinkMessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    message_id: int | None
    channel: str
    recipient: str | None
    subject: str | None
    content: str | None = Field(description="The full MIME of an email, the text of an SMS.")
    segments: int | None
    created_at: datetime


_SEND_EXAMPLE: dict[str, Any] = {
    "campaign_id": 1,
    "to": {"email": "ada@example.com", "first_name": "Ada"},
    "variables": {"survey_url": "https://survey.example/s/abc"},
}


class SingleSend(BaseModel):
    """One message now (or at `send_at`): to a stored contact, or to `to`, which is
    upserted into the org's contacts first (keyed by email and/or phone)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_SEND_EXAMPLE]})

    campaign_id: int
    contact_id: int | None = None
    to: dict[str, Any] | None = Field(default=None, description="A contact row (see ContactIn)")
    variables: dict[str, Any] = Field(default_factory=dict)
    send_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_recipient(self) -> SingleSend:
        if (self.contact_id is None) == (self.to is None):
            raise ValueError("give exactly one of contact_id and to")
        return self
