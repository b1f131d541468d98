from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from tidings.db.base import Base, BigIntPK, utcnow


class Member(Base):
    """A person who signs in to the console, in one org, with a role (`roles.Role`).

    `email` is unique across orgs: it is what a person signs in with, and one person
    belongs to one org (an operator — `is_operator` — may act in any org, switching
    between them). Only the Argon2id hash of the password is kept. A disabled member
    (`disabled_at`) cannot sign in, and their sessions end."""

    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    is_operator: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None]
    last_sign_in_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in browser. Only the SHA-256 of the cookie's random token is kept.

    `org_id` is the org the console shows: the member's own, or, for an operator, the one
    they switched to. `csrf_token` is the session's CSRF token (not a credential on its
    own: it is compared with what a form sends, beside the cookie). A session ends at
    `expires_at`, after `idle` without a request (`last_seen_at`), or when revoked."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class SignInAttempt(Base):
    """A failed sign-in, by the email tried and the client's address: what the rate limit
    counts (`limits.py`), in the database so that it holds across processes."""

    __tablename__ = "sign_in_attempts"
    __table_args__ = (
        Index("ix_sign_in_attempts_email_at", "email", "at"),
        Index("ix_sign_in_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
