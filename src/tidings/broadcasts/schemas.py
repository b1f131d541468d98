from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.fields import Id, Moment
from tidings.broadcasts.status import BroadcastStatus

_EXAMPLE: dict[str, Any] = {
    "name": "NPS wave 3",
    "campaign_id": 1,
    "list_ids": [1],
    "segment_ids": [],
    "send_to_all": False,
    "scheduled_at": None,
}


class BroadcastCreate(BaseModel):
    """`scheduled_at` null sends now; `draft` keeps it unsent until `POST …/send`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=255)
    campaign_id: Id
    list_ids: list[Id] = Field(default_factory=list, max_length=100)
    segment_ids: list[Id] = Field(default_factory=list, max_length=10)
    send_to_all: bool = False
    recipients: list[Any] = Field(
        default_factory=list,
        max_length=10_000,
        description=(
            "Explicit recipients: contact rows (upserted into the org's contacts, keyed by "
            "email and/or phone), each with optional `variables` for its message. Bad rows "
            "are reported in `rejected`; the good ones are sent."
        ),
    )
    scheduled_at: Moment | None = None
    draft: bool = False

    @model_validator(mode="after")
    def _has_an_audience(self) -> BroadcastCreate:
        if not (self.send_to_all or self.list_ids or self.segment_ids or self.recipients):
            raise ValueError("choose an audience: list_ids, segment_ids, send_to_all or recipients")
        return self


class BroadcastOut(BaseModel):
    id: int
    name: str
    campaign_id: int | None = Field(description="None: a draft with no template attached yet.")
    status: BroadcastStatus
    list_ids: list[int]
    segment_ids: list[int]
    send_to_all: bool
    test: bool = Field(description="Created with a test key: its messages only reach the sink.")
    scheduled_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    contacts_count: int
    recipients_count: int
    skipped_count: int
    sent_count: int
    failed_count: int
    delivered_count: int
    opened_count: int
    clicked_count: int
    played_count: int
    complained_count: int
    unsubscribed_count: int
    fallback_count: int = Field(
        description="Recipients sent the campaign's fallback on the other channel instead "
        "(their message there failed or hard-bounced): each such message has `fallback_of`."
    )
    created_at: datetime
    updated_at: datetime


class RejectedRecipient(BaseModel):
    index: int
    field: str
    reason: str


class BroadcastCreated(BroadcastOut):
    rejected: list[RejectedRecipient] = Field(
        default_factory=list, description="Explicit recipients not accepted, by index and field."
    )
