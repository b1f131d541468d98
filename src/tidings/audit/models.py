from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, JSONDoc, utcnow


class AuditEntry(Base):
    """One `manage` action, append-only: who did it (`actor`: "key 12", "cli"; `key_id`
    when an API key did), when, which action on which target, and what changed.

    `changes` never holds a secret's value (`audit.diff.Secret`) nor a person's data:
    actions on contacts and suppressions record counts and ids only, so erasing a person
    has nothing to erase here."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_entries_org_id_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    key_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[int | None] = mapped_column(BigInteger)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONDoc)
