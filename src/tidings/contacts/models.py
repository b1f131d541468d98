from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class Contact(Base):
    """A person in an org, keyed by email and/or E.164 phone (each unique within the org).

    An erased contact keeps its row (so message history still points somewhere) with every
    personal field emptied and `erased_at` set.
    """

    __tablename__ = "contacts"
    __table_args__ = (
        UniqueConstraint("org_id", "email"),
        UniqueConstraint("org_id", "phone"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    # No index of its own: the unique (org_id, email) index leads with org_id.
    # No foreign key (migration 0012): concurrent imports and invites all share-locked the
    # one org row through it on PostgreSQL. Nothing deletes orgs.
    org_id: Mapped[int] = mapped_column(BigIntPK)
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(16))
    # Derived from `phone` wherever it is written: its ISO 3166 alpha-2 region, null for a
    # number of no country (+800…). SMS country allowlists are checked against it.
    phone_country: Mapped[str | None] = mapped_column(String(2))
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str | None] = mapped_column(String(64))
    email_status: Mapped[str] = mapped_column(String(16), default="subscribed")
    sms_status: Mapped[str] = mapped_column(String(16), default="subscribed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    erased_at: Mapped[datetime | None]


class ContactImport(Base):
    """A CSV import the console started and runs in the background: how far it is, for
    the page that polls it (`contacts/imports.py`). The API's import answers its report
    at the end instead and keeps no row."""

    __tablename__ = "contact_imports"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(BigIntPK, index=True)
    started_by: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="running")  # imports.ImportStatus
    total_rows: Mapped[int] = mapped_column(default=0)
    rows: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    # {"errors": [{"field", "reason", "index"}…], "truncated": bool}: the first errors only
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
