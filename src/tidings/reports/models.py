from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class RejectedReport(Base):
    """A delivery report refused: unsigned, badly signed, stale or malformed. One row per
    refusal, so the counts are exact; `org_id` is the connection's org (the connection is
    known before the report is checked)."""

    __tablename__ = "rejected_reports"
    __table_args__ = (Index("ix_rejected_reports_org_id", "org_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int | None] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL")
    )
    source: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
