from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
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
    """A report that overtook its message's outcome: it names a provider id that no
    message has yet (`provider_id`), or a message still being sent (`message_id`). Kept
    until that outcome is written (then applied) or for `reports.pending.hold_for`
    (then counted as stale). `report` is the parsed report (`service.report_json`)."""

    __tablename__ = "pending_reports"
    __table_args__ = (Index("ix_pending_reports_org_id_provider_id", "org_id", "provider_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(128))
    # No foreign key: a pending row lives minutes, and messages are deleted by the million.
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    report: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
