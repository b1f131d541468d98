from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class Price(Base):
    """What one message costs an org, in micro-credits: per email, or per SMS segment.
    `country` is an ISO 3166-1 alpha-2 code for SMS destinations, or "*" for the rest."""

    __tablename__ = "prices"
    __table_args__ = (UniqueConstraint("org_id", "channel", "country"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(8))
    country: Mapped[str] = mapped_column(String(2))
    amount: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreditBalance(Base):
    """An org's balance in micro-credits (1 credit = 1,000,000): the sum of its ledger,
    moved in the same transaction as each entry. No row: a balance of 0."""

    __tablename__ = "credit_balances"

    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class CreditEntry(Base):
    """One movement of an org's credit, append-only: a top-up (+), a reservation when a
    send is accepted (−), a release when a message ends without being sent (+).
    `balance_after` is the org's balance once this entry applied."""

    __tablename__ = "credit_entries"
    __table_args__ = (Index("ix_credit_entries_org_id_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    amount: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    reference: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(String(200))
    balance_after: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
