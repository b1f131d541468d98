"""Console sessions: a random token in an HttpOnly cookie, its SHA-256 in the database.

A session lasts `lifetime` from sign-in at most, and ends sooner after `idle` without a
request. `last_seen_at` is written at most once a minute (`SEEN_RESOLUTION`), so pages
and their polling fragments do not each write. Revoking (sign-out, a password reset, a
disabled member) sets `revoked_at`; resolving ignores such a session from then on.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import utcnow
from tidings.errors import NotFound
from tidings.members.models import ConsoleSession, Member
from tidings.orgs.models import Org

SEEN_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Lifetimes:
    lifetime: timedelta
    idle: timedelta


@dataclass(frozen=True, slots=True)
class IssuedSession:
    row: ConsoleSession
    token: str  # the cookie's value: shown to the browser once, never stored


@dataclass(frozen=True, slots=True)
class Resolved:
    """A live session with its member and the org it shows."""

    session: ConsoleSession
    member: Member
    org: Org

    @property
    def stale(self) -> bool:
        """`last_seen_at` is due to be written (`touch`)."""
        return utcnow() - self.session.last_seen_at >= SEEN_RESOLUTION


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def open_session(session: AsyncSession, *, member: Member, lifetimes: Lifetimes) -> IssuedSession:
    """A new session of `member`, showing their own org."""
    token = new_token()
    now = utcnow()
    row = ConsoleSession(
        member_id=member.id,
        org_id=member.org_id,
        token_hash=digest(token),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        expires_at=now + lifetimes.lifetime,
    )
    session.add(row)
    return IssuedSession(row=row, token=token)


async def resolve(session: AsyncSession, *, token: str, lifetimes: Lifetimes) -> Resolved | None:
    """The live session the cookie's token names, or None: unknown, expired, idle too
    long, revoked, or its member disabled."""
    now = utcnow()
    found = (
        await session.execute(
            select(ConsoleSession, Member, Org)
            .join(Member, Member.id == ConsoleSession.member_id)
            .join(Org, Org.id == ConsoleSession.org_id)
            .where(ConsoleSession.token_hash == digest(token))
        )
    ).first()
    if found is None:
        return None
    row, member, org = found
    if (
        row.revoked_at is not None
        or row.expires_at <= now
        or row.last_seen_at + lifetimes.idle <= now
        or member.disabled_at is not None
    ):
        return None
    if not member.is_operator and row.org_id != member.org_id:
        return None  # an operator flag taken away: their switched session ends
    return Resolved(session=row, member=member, org=org)


async def touch(session: AsyncSession, *, session_id: int) -> None:
    await session.execute(
        update(ConsoleSession).where(ConsoleSession.id == session_id).values(last_seen_at=utcnow())
    )


async def revoke(session: AsyncSession, *, session_id: int) -> None:
    await session.execute(
        update(ConsoleSession)
        .where(ConsoleSession.id == session_id, ConsoleSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


async def revoke_all(session: AsyncSession, *, member_id: int) -> int:
    """End every session of the member that has not expired nor been revoked (an idle one
    among them); how many."""
    now = utcnow()
    result = await session.execute(
        update(ConsoleSession)
        .where(
            ConsoleSession.member_id == member_id,
            ConsoleSession.revoked_at.is_(None),
            ConsoleSession.expires_at > now,
        )
        .values(revoked_at=now)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def show_org(session: AsyncSession, *, session_id: int, org_id: int) -> Org:
    """Make the session show another org (the caller checked the member is an operator)."""
    org = await session.get(Org, org_id)
    if org is None:
        raise NotFound("org", org_id)
    await session.execute(
        update(ConsoleSession).where(ConsoleSession.id == session_id).values(org_id=org_id)
    )
    return org
