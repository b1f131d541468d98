from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, JSONDoc, utcnow

COUNTERS = (
    "contacts_count",
    "recipients_count",
    "skipped_count",
    "sent_count",
    "failed_count",
    "delivered_count",
    "opened_count",
    "clicked_count",
    "played_count",
    "complained_count",
    "unsubscribed_count",
)


class Broadcast(Base):
    """One send of a campaign to an audience, now or at `scheduled_at`.

    `audience` holds `list_ids`, `segment_ids` and `send_to_all`. The counters are
    moved by whole batches (expansion, dispatcher outcomes, events), never one update
    per message.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_status_scheduled_at", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    # None only for a draft whose template is not attached yet (seed 002).
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    # The campaign as it was when the broadcast was accepted (scheduled); its messages
    # are made with it, whenever it starts. None while a draft.
    campaign_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_versions.id"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    scheduled_at: Mapped[datetime | None]
    # "09:30 local": each message due at this wall time ("HH:MM") in its recipient's zone,
    # on `local_date` ("YYYY-MM-DD"), or, without one, at the next such time after the start.
    local_time: Mapped[str | None] = mapped_column(String(5))
    local_date: Mapped[str | None] = mapped_column(String(10))
    # When its messages come due, set at the start: [[ISO instant, count], …] in time order
    # (one entry per distinct due time: a zone, not a contact), for honest progress.
    due_schedule: Mapped[list[list[Any]] | None] = mapped_column(JSONDoc)
    started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    error_message: Mapped[str | None] = mapped_column(Text)
    # Created with a test key: rendered and recorded by the sink, never handed to a provider.
    is_test: Mapped[bool] = mapped_column(default=False)
    contacts_count: Mapped[int] = mapped_column(default=0)
    recipients_count: Mapped[int] = mapped_column(default=0)
    skipped_count: Mapped[int] = mapped_column(default=0)
    sent_count: Mapped[int] = mapped_column(default=0)
    failed_count: Mapped[int] = mapped_column(default=0)
    delivered_count: Mapped[int] = mapped_column(default=0)
    opened_count: Mapped[int] = mapped_column(default=0)
    clicked_count: Mapped[int] = mapped_column(default=0)
    played_count: Mapped[int] = mapped_column(default=0)
    complained_count: Mapped[int] = mapped_column(default=0)
    unsubscribed_count: Mapped[int] = mapped_column(default=0)
    # Recipients whose message went on the campaign's fallback channel instead (not in
    # COUNTERS: the seed dialects show their own set).
    fallback_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
