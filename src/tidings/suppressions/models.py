from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow

MARKETING_ONLY = frozenset({"unsubscribed"})
"""Suppression reasons that stop marketing only; every other reason stops every purpose
(a bounced address does not exist; a complaint or a STOP is a refusal). The outbox's skip
rule (`tidings.outbox.rules`) reads it in Python and in SQL."""


class Suppression(Base):
    """An address the org must not send to on a channel: `reason` says why (hard_bounce,
    complaint, unsubscribed, stop_keyword, manual), `source` where it came from."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("org_id", "channel", "address"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    address: Mapped[str] = mapped_column(String(320))
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SoftBounce(Base):
    """Soft bounces of one address in a row; past the threshold it is suppressed, and a
    delivery resets it."""

    __tablename__ = "soft_bounces"

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
