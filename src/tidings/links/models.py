from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, SmallInteger, Text
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK


class Link(Base):
    """A link in one message, kept server-side: `/l/{token}` carries only (message, position)
    and redirects here, never to a URL taken from the request."""

    __tablename__ = "links"

    # No foreign keys (migration 0012): the dispatcher writes a batch's links with its
    # outcomes, for messages it holds; messages and orgs are never deleted.
    message_id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    position: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    org_id: Mapped[int] = mapped_column(BigIntPK)
    url: Mapped[str] = mapped_column(Text)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    first_clicked_at: Mapped[datetime | None]
