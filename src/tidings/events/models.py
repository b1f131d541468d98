from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow
from tidings.event_types import EVENT_TYPES as EVENT_TYPES


class Event(Base):
    """Something that happened to a message, append-only. `external_id` (a provider's
    report id, a tracking token's use) makes recording idempotent: the same (org, source,
    external id) is stored once. `is_bot` marks opens and clicks by scanners and
    prefetchers, which are kept but not counted as human."""

    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("org_id", "source", "external_id"),
        Index("ix_events_org_id_id", "org_id", "id"),
        Index("ix_events_broadcast_id_type", "broadcast_id", "type"),
        Index("ix_events_message_id", "message_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No foreign keys on these four (migration 0011), as on messages (0010): PostgreSQL
    # checks each with a trigger per inserted row, and the dispatcher writes one `sent`
    # or `failed` event per message it finishes. Events are written from rows read in
    # the same transaction, and nothing deletes messages, orgs, broadcasts or campaigns
    # that have them.
    org_id: Mapped[int] = mapped_column(BigIntPK)
    message_id: Mapped[int | None] = mapped_column(BigIntPK)
    broadcast_id: Mapped[int | None] = mapped_column(BigIntPK)
    campaign_id: Mapped[int | None] = mapped_column(BigIntPK)
    type: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str | None] = mapped_column(String(200))
    is_bot: Mapped[bool] = mapped_column(default=False)
    # Copied from its message: a test key's send, which only reached the sink (0018).
    is_test: Mapped[bool] = mapped_column(default=False, server_default=false())
    data: Mapped[dict[str, Any] | None]
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
