from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, unique_among_live, utcnow


class Template(Base):
    """Email (subject, HTML and/or text) or SMS (text) content with Jinja2 variables.

    The row holds the current content; every content it has had is a `TemplateVersion`
    (`version` is the current one's number), and sends use a version, never the row.
    Deleting it sets `deleted_at`: hidden from the API, its versions kept for the sends
    that used them.

    `is_inline`: the content a single send gave inline, stored as a template so that it is
    rendered like any other. Named after a digest of its content (one row per distinct
    content), never listed, never changed: it has one version.
    """

    __tablename__ = "templates"
    __table_args__ = (unique_among_live("templates", "org_id", "name"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    is_inline: Mapped[bool] = mapped_column(default=False, server_default=false())
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]


class TemplateVersion(Base):
    """One content a template has had, numbered 1, 2, … in the template: immutable, so the
    dispatcher compiles a version once and keeps it. `created_by` says who made it (`key
    12`, `cli`; None: Tidings itself, e.g. an inline template)."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "number"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("templates.id", ondelete="CASCADE"))
    number: Mapped[int]
    channel: Mapped[str] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(64))
