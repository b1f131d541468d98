"""The sign-in rate limit: failed sign-ins counted per email and per client address over
a sliding window, in the database (`sign_in_attempts`), so it holds across processes
and restarts.

    PER_EMAIL failures for one email in WINDOW      that email is refused until the
                                                    oldest of them is WINDOW old
    PER_ADDRESS failures from one address in WINDOW that address is refused likewise

The email limit stops guessing one member's password; the address limit stops one
client trying many emails. A successful sign-in clears its email's count. Behind a
reverse proxy every client has the proxy's address: PER_ADDRESS is set high for that
reason (docs/security.md).

Old rows are deleted as the same email or address fails again (by the indexes these
queries use); rows of an email or address never seen again stay, at a few bytes each.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.base import utcnow
from tidings.members.models import SignInAttempt

WINDOW = timedelta(minutes=15)
PER_EMAIL = 5
PER_ADDRESS = 50


@dataclass(frozen=True, slots=True)
class Limited:
    """A refused sign-in: by what (`email` or `address`), and for how many seconds."""

    by: str
    retry_after: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        where = "for this email address" if self.by == "email" else "from your network address"
        return f"Too many failed sign-ins {where}. Try again in {minutes} minute(s)."


def email_key(email: str) -> str:
    """The email as counted: as typed, lower-cased and stripped (any text counts)."""
    return email.strip().lower()[:320]


async def _oldest_if_over(
    session: AsyncSession, condition: ColumnElement[bool], limit: int, since: datetime
) -> datetime | None:
    count, oldest = (
        await session.execute(
            select(func.count(), func.min(SignInAttempt.at)).where(
                condition, SignInAttempt.at >= since
            )
        )
    ).one()
    return oldest if count >= limit else None


async def blocked(session: AsyncSession, *, email: str, address: str) -> Limited | None:
    """Whether a sign-in for `email` from `address` is refused now, and for how long."""
    now = utcnow()
    since = now - WINDOW
    checks = [
        ("email", SignInAttempt.email == email_key(email), PER_EMAIL),
        ("address", SignInAttempt.address == address, PER_ADDRESS),
    ]
    for by, condition, limit in checks:
        oldest = await _oldest_if_over(session, condition, limit, since)
        if oldest is not None:
            return Limited(by=by, retry_after=math.ceil((oldest + WINDOW - now).total_seconds()))
    return None


async def record_failure(session: AsyncSession, *, email: str, address: str) -> None:
    key, cutoff = email_key(email), utcnow() - WINDOW
    await session.execute(
        delete(SignInAttempt).where(SignInAttempt.email == key, SignInAttempt.at < cutoff)
    )
    await session.execute(
        delete(SignInAttempt).where(SignInAttempt.address == address, SignInAttempt.at < cutoff)
    )
    session.add(SignInAttempt(email=key, address=address[:64]))
    await session.flush()


async def clear(session: AsyncSession, *, email: str) -> None:
    """A successful sign-in: its email's failures no longer count."""
    await session.execute(delete(SignInAttempt).where(SignInAttempt.email == email_key(email)))
