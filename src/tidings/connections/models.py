from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, unique_among_live, utcnow
from tidings.db.sealed import SealedJSON


class Connection(Base):
    """A provider an org sends through. `settings` is readable configuration; `credentials`
    (passwords, API keys, tokens, and the settings a kind declares secret) is write-only
    through the API and sealed at rest (`db/sealed.py`). Limits hold for the whole
    cluster, every worker together. Deleting it sets `deleted_at` (hidden, kept as
    history); `updated_at` moves with every change, so workers build its channel again."""

    __tablename__ = "connections"
    __table_args__ = (
        unique_among_live("connections", "org_id", "name"),
        unique_among_live("connections", "org_id", "email_service"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    credentials: Mapped[dict[str, Any]] = mapped_column(
        SealedJSON("connections.credentials"), default=dict
    )
    max_per_second: Mapped[float | None] = mapped_column(Float)
    max_concurrency: Mapped[int] = mapped_column(default=10)
    is_default: Mapped[bool] = mapped_column(default=False)
    # Seed 001's `emailing_service` ("mailbox" or "gateway") this connection stands for.
    email_service: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None]


class ConnectionHealth(Base):
    """How a connection has fared lately, shared by every worker: the circuit breaker
    (`connections.health`). Attempts and transient errors are counted in the window that
    began at `window_started_at` and in the one before it (`previous_*`), which together
    make a sliding window. `state` is closed (sending), open (skipped by every worker
    until `opened_until`; half-open after that: a probe goes through, and its outcome
    closes or opens it again). One row per connection that has sent; written by the
    dispatcher's record step, never by the API."""

    __tablename__ = "connection_health"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="closed")
    opened_until: Mapped[datetime | None]
    window_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    previous_attempts: Mapped[int] = mapped_column(Integer, default=0)
    previous_errors: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
