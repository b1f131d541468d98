from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow
from tidings.db.sealed import Sealed


class SendingDomain(Base):
    """A domain an org sends email from (its A-label form, lower case). With
    `include_subdomains`, its keys also sign mail From any name below it (`d=` stays this
    domain: DMARC's relaxed alignment accepts it)."""

    __tablename__ = "sending_domains"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(253))
    include_subdomains: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class DkimKey(Base):
    """One DKIM key of a domain, published under `selector`. `status` (`domains.status`):
    `pending` (published, not signing yet), `active` (signs: one per algorithm and domain),
    `retired` (no longer signs; its record stays until the key is deleted, so mail signed
    with it still verifies). `private_key` is PKCS#8 PEM, sealed at rest and never
    returned; `public_key` is the record's `p=`."""

    __tablename__ = "dkim_keys"
    __table_args__ = (UniqueConstraint("domain_id", "selector"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("sending_domains.id", ondelete="CASCADE"))
    selector: Mapped[str] = mapped_column(String(63))
    algorithm: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    private_key: Mapped[str] = mapped_column(Sealed("dkim_keys.private_key"))
    public_key: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]
