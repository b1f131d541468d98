from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
