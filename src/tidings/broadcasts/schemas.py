from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tidings.api.fields import Id, Moment
from tidings.broadcasts.models import COUNTERS, Broadcast
from tidings.broadcasts.status import BroadcastStatus
from tidings.db.base import utcnow

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
    local_time: str | None = Field(
        default=None,
        pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description=(
            "Send each message at this wall-clock time (HH:MM) in its recipient's time zone "
            "(the contact's, else its phone's country's when that country has one zone, else "
            "the org's): on `local_date`, or at the next such time after the start."
        ),
        examples=["09:30"],
    )
    local_date: date | None = Field(
        default=None,
        description="The date of `local_time` in each zone; where it is already past when "
        "the broadcast starts, the message goes at once.",
    )
    draft: bool = False
    dry_run: bool = Field(
        default=False,
        description="Create nothing: answer 200 with the estimate (`BroadcastEstimate`) of "
        "what this broadcast would send.",
    )

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
    local_time: str | None = Field(
        default=None, description="Each message due at this wall time in its recipient's zone."
    )
    local_date: date | None = None
    last_due_at: datetime | None = Field(
        default=None,
        description="When its last message comes due (known once started): the earliest it "
        "can finish, local times and quiet hours included.",
    )
    scheduled_later_count: int = Field(
        default=0,
        description="Messages not due yet (waiting for their local time or quiet hours to "
        "end): not stuck, not sent; counted from the due times set when it started.",
    )
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
        "(their message there was skipped for want of an address, an unsubscription or a "
        "suppression, or failed or hard-bounced): each such message has `fallback_of`, "
        "and belongs to no broadcast."
    )
    created_at: datetime
    updated_at: datetime


def broadcast_out(b: Broadcast) -> BroadcastOut:
    """The API's (and the CLI's and the console's) view of a broadcast and its counters."""
    schedule = [(datetime.fromisoformat(at), int(n)) for at, n in b.due_schedule or []]
    now = utcnow()
    # Waiting is what a running broadcast's messages do; a cancelled one's never will.
    waiting = b.status in (BroadcastStatus.SENDING, BroadcastStatus.PAUSED)
    return BroadcastOut(
        id=b.id,
        name=b.name,
        campaign_id=b.campaign_id,
        status=BroadcastStatus(b.status),
        list_ids=b.audience.get("list_ids", []),
        segment_ids=b.audience.get("segment_ids", []),
        send_to_all=bool(b.audience.get("send_to_all")),
        test=b.is_test,
        scheduled_at=b.scheduled_at,
        local_time=b.local_time,
        local_date=date.fromisoformat(b.local_date) if b.local_date else None,
        last_due_at=schedule[-1][0] if schedule else None,
        scheduled_later_count=sum(n for at, n in schedule if at > now) if waiting else 0,
        started_at=b.started_at,
        completed_at=b.completed_at,
        error_message=b.error_message,
        created_at=b.created_at,
        updated_at=b.updated_at,
        fallback_count=b.fallback_count,
        **{name: getattr(b, name) for name in COUNTERS},
    )


class RejectedRecipient(BaseModel):
    index: int
    field: str
    reason: str


class BroadcastCreated(BroadcastOut):
    rejected: list[RejectedRecipient] = Field(
        default_factory=list, description="Explicit recipients not accepted, by index and field."
    )


class DueAt(BaseModel):
    due_at: datetime
    messages: int


class BroadcastEstimate(BaseModel):
    """What a broadcast would send if it started now, computed by the expansion's own rules
    without creating a message."""

    channel: str
    contacts: int = Field(description="Contacts reached: recipients and skipped.")
    recipients: dict[str, int] = Field(
        description="Messages that would be sent, by channel: the campaign's, and its "
        "fallback campaign's (the fallback messages made instead of skipped ones)."
    )
    skipped: dict[str, int] = Field(
        description="Contacts skipped on the campaign's channel, by reason: those who get "
        "the fallback's message instead included."
    )
    sms_segments: int = Field(
        description="SMS segments in all: each SMS counted at its template text's length as "
        "written (a longer personalised text is settled when it is rendered)."
    )
    cost: float = Field(description="Credits, from the org's price table (0 with a test key).")
    reserved: float = Field(description="Credits already reserved (its explicit recipients).")
    balance: float = Field(description="The org's credit balance now.")
    covered: bool = Field(description="Whether the balance covers what is left to reserve.")
    first_due_at: datetime | None
    last_due_at: datetime | None = Field(
        description="When the last message comes due: local time and quiet hours included."
    )
    schedule: list[DueAt] = Field(description="Messages by due time, in time order.")
