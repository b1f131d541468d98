"""When a send's messages come due: its `Timing` (the broadcast's local wall time, the
campaign's or the org's quiet hours, the org's sending days and zone), the zones its
audience is in, and, once expanded, its due schedule. The rule itself is
`outbox.rules.due_time` and its SQL twin; this module reads what they are given. Query
helpers: the caller owns the transaction.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Protocol, cast

from sqlalchemy import ColumnElement, Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.campaigns.models import CampaignVersion
from tidings.contacts.models import Contact
from tidings.orgs.models import WEEKDAYS, Org
from tidings.outbox.local import Timing, Window
from tidings.outbox.models import Message
from tidings.outbox.rules import due_time_sql, timing
from tidings.outbox.status import MessageStatus

MESSAGES = cast(Table, Message.__table__)
CONTACTS = cast(Table, Contact.__table__)
S = MessageStatus


class Sending(Protocol):
    """What `send_timing` reads of an org."""

    timezone: str | None
    quiet_hours: dict[str, dict[str, str]] | None
    sending_days: list[str] | None


def send_timing(
    org: Sending,
    campaign: CampaignVersion,
    *,
    local_time: str | None = None,
    local_date: str | None = None,
) -> tuple[Timing, str]:
    """(the send's Timing, the org's zone): the campaign's own quiet hours, else the
    org's for its channel; the org's sending days; the broadcast's local wall time."""
    quiet = campaign.quiet_hours
    if quiet is None:
        quiet = (org.quiet_hours or {}).get(campaign.channel)
    days = org.sending_days
    made = timing(
        purpose=campaign.purpose,
        local_time=time.fromisoformat(local_time) if local_time else None,
        local_date=date.fromisoformat(local_date) if local_date else None,
        quiet=Window.parse(quiet),
        days=None if days is None else [WEEKDAYS.index(d) + 1 for d in days],
    )
    return made, org.timezone or "UTC"


async def resolve(
    session: AsyncSession,
    *,
    org_id: int,
    campaign: CampaignVersion,
    given: Timing | None,
    org_zone: str,
) -> tuple[Timing, str]:
    """(`given`, `org_zone`), or, when no timing was given (single sends and invites),
    the org's and the campaign's (`send_timing`: quiet hours, no local time)."""
    if given is not None:
        return given, org_zone
    org = await session.get(Org, org_id)
    assert org is not None
    return send_timing(org, campaign)


async def places(
    session: AsyncSession, *, audience: ColumnElement[bool]
) -> list[tuple[str | None, str | None]]:
    """The distinct (timezone, phone_country) of the contacts matching `audience`: what
    the zone rule reads (one scan; a few hundred rows at most)."""
    c = CONTACTS.c
    rows = await session.execute(select(c.timezone, c.phone_country).where(audience).distinct())
    return [(tz, country) for tz, country in rows]


async def due_column(
    session: AsyncSession,
    *,
    timing: Timing,
    org_zone: str,
    now: datetime,
    audience: ColumnElement[bool],
) -> ColumnElement[datetime]:
    """The due time of each row of an expansion over `audience`: one instant for all, or,
    when the timing depends on the zone, one per zone in play (`places`)."""
    found = await places(session, audience=audience) if timing.per_zone else []
    return due_time_sql(
        None, now=now, contacts=CONTACTS, places=found, org_zone=org_zone, timing=timing
    )


async def due_schedule(session: AsyncSession, *, broadcast_id: int) -> list[tuple[datetime, int]]:
    """(due at, messages) of the broadcast's messages still to send, in time order (read
    only; one row per distinct due time: a zone's, not a contact's)."""
    m = MESSAGES.c
    rows = await session.execute(
        select(m.due_at, func.count())
        .where(m.broadcast_id == broadcast_id, m.status.in_([S.QUEUED.value, S.HELD.value]))
        .group_by(m.due_at)
        .order_by(m.due_at)
    )
    return [(at, int(n)) for at, n in rows]
