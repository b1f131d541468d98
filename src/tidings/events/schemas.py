"""The API shapes of events and stats."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EventOut(BaseModel):
    """Something that happened to a message. `bot`: a scanner's or prefetcher's open or
    click, kept but not counted (`data.bot` says which rule flagged it)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    message_id: int | None
    broadcast_id: int | None
    campaign_id: int | None
    source: str
    bot: bool = Field(validation_alias="is_bot")
    test: bool = Field(
        validation_alias="is_test",
        description="Its message was sent with a test key: it only reached the sink.",
    )
    data: dict[str, Any] | None
    occurred_at: datetime
    created_at: datetime


class Counters(BaseModel):
    recipients: int
    sent: int
    failed: int = Field(description="Failed to send, plus bounced after sending.")
    delivered: int
    bounced: int
    opened: int = Field(description="Recipients with a human open (bots not counted).")
    clicked: int
    played: int
    complained: int
    unsubscribed: int


class Rates(BaseModel):
    """Fractions from 0 to 1; null when the denominator is 0."""

    delivery: float | None = Field(description="delivered / sent")
    bounce: float | None = Field(description="bounced / sent")
    open: float | None = Field(description="opened / (sent − bounced)")
    click: float | None = Field(description="clicked / (sent − bounced)")
    complaint: float | None = Field(description="complained / (sent − bounced)")
    unsubscribe: float | None = Field(description="unsubscribed / (sent − bounced)")


class Denominators(BaseModel):
    sent: int
    accepted: int = Field(description="sent − bounced")


class Point(BaseModel):
    at: datetime = Field(description="Start of the bucket (UTC).")
    counts: dict[str, int] = Field(description="Human events by type in the bucket.")


class StatsOut(BaseModel):
    counters: Counters
    rates: Rates
    denominators: Denominators
    interval: str
    series: list[Point]


class BroadcastStatsOut(StatsOut):
    broadcast_id: int


class CampaignStatsOut(StatsOut):
    campaign_id: int
    broadcasts: int = Field(description="How many broadcasts of the campaign are summed.")
