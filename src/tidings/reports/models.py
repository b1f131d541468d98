from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class RejectedReport(Base):
    """A delivery report refused: unsigned, badly signed, stale or malformed. One row per
    refusal, so the counts are exact; `org_id` is the connection's org (the connection is
    known before the report is checked)."""

    __tablename__ = "rejected_reports"
    __table_args__ = (
        Index("ix_rejected_reports_org_id", "org_id"),
        Index("ix_rejected_reports_created_at", "created_at"),  # retention
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PendingReport(Base):
    """A report about a provider id no message has yet: the provider answered the send
    and reported on it before the dispatcher wrote that answer down. Kept until the id
    appears (then applied) or for `reports.pending.HOLD` (then counted as stale).
    `report` is the parsed report (`reports.pending.to_json`)."""

    __tablename__ = "pending_reports"
    __table_args__ = (Index("ix_pending_reports_org_id_provider_id", "org_id", "provider_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str] = mapped_column(String(128))
    report: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
