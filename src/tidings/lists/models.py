from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class ContactList(Base):
    """A named set of contacts (a campaign's recipient list, a seed's `list_name`)."""

    __tablename__ = "lists"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ListMember(Base):
    __tablename__ = "list_members"

    # No foreign keys (migration 0012): every concurrent invite request adds members to
    # the same list, and PostgreSQL's per-row key checks share-locked that one list row
    # (and the org's) from all of them at once. Members are written for contacts the
    # same request upserted, to a list it read; deleting a list deletes its members;
    # contacts are never deleted (erasure drops the memberships).
    list_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    contact_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, index=True)
    # Every query names the list too, so the primary key serves; org_id is the tenancy guard.
    org_id: Mapped[int] = mapped_column(BigIntPK)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
