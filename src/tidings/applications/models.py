from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class Application(Base):
    """A chat application that invites people by SMS (seed 003). Its `key` names it in the
    invite path; `sms_sender` and `connection_id` say how its invites are sent (None: the
    org's default SMS connection)."""

    __tablename__ = "applications"
    __table_args__ = (UniqueConstraint("org_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    sms_sender: Mapped[str | None] = mapped_column(String(16))
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id"))
    # The SMS template of its invites: the request's text around the invite link.
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Integration(Base):
    """Where an application's invite link of one type (FACEBOOK, WHATSAPP, …) leads.

    Its invites are sent under its own campaign (the application's sender, connection and
    template; `invite_url` = `target_url`), so the native API lists and counts them."""

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("application_id", "type"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    target_url: Mapped[str] = mapped_column(Text)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
