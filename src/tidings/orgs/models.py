from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, JSONDoc, utcnow

RETENTION_DAYS = {"content": 30, "event": 400, "message": 400}
"""A new org's retention: message content a month, events and message rows 400 days (a
year of history, and a year-on-year comparison a month either side). docs/privacy.md."""

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""The names of `sending_days`, Monday first (ISO weekday − 1)."""


class Org(Base):
    """A tenant. `login` names it to the dialects that authenticate with login + key."""

    __tablename__ = "orgs"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    login: Mapped[str] = mapped_column(String(64), unique=True)
    phone_region: Mapped[str | None] = mapped_column(String(2))
    # ISO 3166 alpha-2 codes SMS may go to (sorted, distinct); null = every country.
    sms_countries: Mapped[list[str] | None] = mapped_column(JSONDoc)
    # The IANA zone of a recipient whose own is not known (`outbox.rules.recipient_zone`);
    # null = UTC.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Marketing quiet hours per channel: {"email": {"start": "21:00", "end": "08:00"}, …};
    # null or a missing channel = none.
    quiet_hours: Mapped[dict[str, dict[str, str]] | None] = mapped_column(JSONDoc)
    # The days marketing may go out on ("mon" … "sun"), in the recipient's zone; null = any.
    sending_days: Mapped[list[str] | None] = mapped_column(JSONDoc)
    # Retention in days (`privacy.retention`); null keeps forever. Defaults: RETENTION_DAYS.
    content_retention_days: Mapped[int | None] = mapped_column(
        default=RETENTION_DAYS["content"], server_default=str(RETENTION_DAYS["content"])
    )
    event_retention_days: Mapped[int | None] = mapped_column(
        default=RETENTION_DAYS["event"], server_default=str(RETENTION_DAYS["event"])
    )
    message_retention_days: Mapped[int | None] = mapped_column(
        default=RETENTION_DAYS["message"], server_default=str(RETENTION_DAYS["message"])
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
