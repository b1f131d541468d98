"""Cross-channel fallback at expansion: a broadcast whose campaign has a fallback campaign
(the other channel) sends it to each contact its expansion skipped for a reason that
`rules.falls_back` — no address on the preferred channel, unsubscribed or suppressed
there — when the fallback's own skip rule lets the contact through. Set-based, after the
expansion's INSERT … SELECT (`outbox.create.expand`), in the caller's transaction:

    INSERT INTO messages … SELECT … FROM messages (the broadcast's SKIPPED that fall back)
        JOIN contacts LEFT JOIN suppressions (the fallback's channel)
        WHERE the fallback's skip reason IS NULL
            the fallback's message: of no broadcast (the broadcast's unique contact key
            holds the skipped one), QUEUED, due as the fallback campaign's timing says,
            the same variables, `fallback_of` the skipped message
    UPDATE messages SET fell_back_to = (its fallback: a probe of the contact's messages)
        the skipped message, which keeps its status and reason

A contact the fallback skips too gets nothing more: its preferred message stays SKIPPED
with its reason, and no fallback row is made. A campaign without a fallback runs none of
this. `estimate` is the same SELECT grouped by place (read only), for the broadcast
estimate; the outcome-time fallback (a failure, a hard bounce) is `broadcasts.fallback`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, exists, func, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.contacts.models import Contact
from tidings.db.base import UTCDateTime
from tidings.outbox.create import Batch
from tidings.outbox.local import Timing
from tidings.outbox.models import Message
from tidings.outbox.rules import (
    Place,
    due_time,
    falls_back_sql,
    recipient_zone,
    skip_reason_sql,
    suppression_match,
)
from tidings.outbox.status import MessageStatus
from tidings.outbox.timing import due_column, resolve
from tidings.suppressions.models import Suppression

MESSAGES = cast(Table, Message.__table__)
CONTACTS = cast(Table, Contact.__table__)
SUPPRESSIONS = cast(Table, Suppression.__table__)
S = MessageStatus


def merged(*schedules: list[tuple[datetime, int]]) -> list[tuple[datetime, int]]:
    """Several (due at, messages) schedules as one, in time order."""
    by_due: dict[datetime, int] = {}
    for schedule in schedules:
        for at, n in schedule:
            by_due[at] = by_due.get(at, 0) + n
    return sorted(by_due.items())


async def _timing(session: AsyncSession, *, batch: Batch) -> tuple[Timing, str]:
    return await resolve(
        session, org_id=batch.org_id, campaign=batch.campaign, given=batch.timing,
        org_zone=batch.org_zone,
    )  # fmt: skip


def _fallen(batch: Batch) -> tuple[Table, ColumnElement[bool]]:
    """The broadcast's skipped messages that fall back (an alias of messages, and the
    condition): its expansion's and its explicit recipients' alike."""
    skipped = MESSAGES.alias("preferred")
    p = skipped.c
    condition = (
        (p.broadcast_id == batch.broadcast_id)
        & (p.status == S.SKIPPED.value)
        & falls_back_sql(p.reason)
        & p.contact_id.is_not(None)
    )
    return cast(Table, skipped), condition


def _fallback_rule(
    batch: Batch, sms_countries: Collection[str] | None
) -> tuple[Table, ColumnElement[bool], ColumnElement[Any], ColumnElement[Any]]:
    """The fallback campaign's skip rule over CONTACTS: (its suppressions alias, the LEFT
    JOIN condition, the address, the skip reason or NULL)."""
    campaign = batch.campaign
    listed = SUPPRESSIONS.alias("listed_fallback")
    address, reason = skip_reason_sql(
        CONTACTS, listed, channel=campaign.channel, purpose=campaign.purpose,
        sms_countries=sms_countries,
    )  # fmt: skip
    on_list = suppression_match(
        listed, org_id=batch.org_id, channel=campaign.channel, address=address,
        marketing=campaign.purpose == "marketing",
    )  # fmt: skip
    return cast(Table, listed), on_list, address, reason


@dataclass(frozen=True, slots=True)
class Fallbacks:
    made: int
    schedule: list[tuple[datetime, int]]  # (due at, messages), in time order


async def expand(
    session: AsyncSession, *, batch: Batch, sms_countries: Collection[str] | None
) -> Fallbacks:
    """Side effects: the fallback message (`batch.campaign`, of no broadcast, QUEUED) of
    each of the broadcast's (`batch.broadcast_id`) skipped messages that falls back, to
    the same contact with the same variables, where the fallback's own skip rule lets it
    through (else nothing: the contact stays skipped with the preferred channel's
    reason); both linked. Returns how many were made and when they come due."""
    campaign = batch.campaign
    skipped, fallen = _fallen(batch)
    p = skipped.c
    listed, on_list, address, reason = _fallback_rule(batch, sms_countries)
    timing, org_zone = await _timing(session, batch=batch)
    candidates = CONTACTS.c.id.in_(select(p.contact_id).where(fallen))
    due = await due_column(
        session, timing=timing, org_zone=org_zone, now=batch.now, audience=candidates
    )
    rows = (
        select(
            literal(batch.org_id),
            literal(campaign.campaign_id),
            literal(campaign.id),
            CONTACTS.c.id,
            literal(campaign.channel),
            address,
            literal(S.QUEUED.value),
            literal(batch.is_test),
            literal(0),
            due,
            literal(batch.now, type_=UTCDateTime()),
            p.variables,
            p.id,
        )
        .select_from(
            skipped.join(CONTACTS, CONTACTS.c.id == p.contact_id).outerjoin(listed, on_list)
        )
        .where(fallen, reason.is_(None))
    )
    columns = ["org_id", "campaign_id", "campaign_version_id", "contact_id", "channel",
               "recipient", "status", "is_test", "attempts", "due_at", "created_at",
               "variables", "fallback_of"]  # fmt: skip
    made = await session.execute(insert(MESSAGES).from_select(columns, rows))
    count = int(made.rowcount)  # type: ignore[attr-defined]
    if not count:
        return Fallbacks(0, [])
    m, f = MESSAGES.c, MESSAGES.alias("fallback").c
    # The contact's messages by index: its fallback is among them.
    link = select(f.id).where(f.contact_id == m.contact_id, f.fallback_of == m.id)
    await session.execute(
        update(MESSAGES)
        .where(
            m.broadcast_id == batch.broadcast_id,
            m.status == S.SKIPPED.value,
            falls_back_sql(m.reason),
            exists(link),
        )
        .values(fell_back_to=link.scalar_subquery())
    )
    schedule = await _schedule(session, batch=batch) if timing.per_zone else [(batch.now, count)]
    return Fallbacks(count, schedule)


async def _schedule(session: AsyncSession, *, batch: Batch) -> list[tuple[datetime, int]]:
    """(due at, messages) of the broadcast's fallback messages just made (read only)."""
    preferred, fallback = MESSAGES.alias("preferred"), MESSAGES.alias("fallback")
    p, f = preferred.c, fallback.c
    rows = await session.execute(
        select(f.due_at, func.count())
        .select_from(preferred.join(fallback, f.id == p.fell_back_to))
        .where(p.broadcast_id == batch.broadcast_id, p.status == S.SKIPPED.value)
        .group_by(f.due_at)
    )
    return sorted((at, int(n)) for at, n in rows)


@dataclass(frozen=True, slots=True)
class FallbackEstimate:
    """The fallback messages an expansion would make: how many, when due, by country."""

    recipients: int
    schedule: list[tuple[datetime, int]]
    countries: dict[str | None, int]  # SMS recipients by their phone's country


async def estimate(
    session: AsyncSession,
    *,
    batch: Batch,
    fallback: Batch,
    audience: ColumnElement[bool],
    sms_countries: Collection[str] | None,
) -> FallbackEstimate:
    """`expand`'s SELECT, grouped by place (read only): the contacts of `audience`
    whose preferred message (`batch`) would be skipped for a reason that falls back, and
    the broadcast's explicit recipients skipped so already, that the fallback's own skip
    rule lets through."""
    preferred = SUPPRESSIONS.alias("listed")
    address, reason = skip_reason_sql(
        CONTACTS, preferred, channel=batch.campaign.channel, purpose=batch.campaign.purpose,
        sms_countries=sms_countries,
    )  # fmt: skip
    on_preferred = suppression_match(
        preferred, org_id=batch.org_id, channel=batch.campaign.channel, address=address,
        marketing=batch.campaign.purpose == "marketing",
    )  # fmt: skip
    listed, on_list, _, fallback_reason = _fallback_rule(fallback, sms_countries)
    skipped, fallen = _fallen(fallback)
    c = CONTACTS.c
    sources = [
        select(c.timezone, c.phone_country, func.count())
        .select_from(CONTACTS.outerjoin(preferred, on_preferred).outerjoin(listed, on_list))
        .where(audience, falls_back_sql(reason), fallback_reason.is_(None))
        .group_by(c.timezone, c.phone_country),
        select(c.timezone, c.phone_country, func.count())
        .select_from(
            skipped.join(CONTACTS, c.id == skipped.c.contact_id).outerjoin(listed, on_list)
        )
        .where(fallen, fallback_reason.is_(None))
        .group_by(c.timezone, c.phone_country),
    ]
    timing, org_zone = await _timing(session, batch=fallback)
    by_due: dict[datetime, int] = {}
    countries: dict[str | None, int] = {}
    total = 0
    for source in sources:
        for tz, where, n in await session.execute(source):
            total += int(n)
            zone = recipient_zone(Place(tz, where), org_zone=org_zone)
            at = due_time(None, now=fallback.now, zone=zone, timing=timing)
            by_due[at] = by_due.get(at, 0) + int(n)
            key = where if fallback.campaign.channel == "sms" else None
            countries[key] = countries.get(key, 0) + int(n)
    return FallbackEstimate(total, sorted(by_due.items()), countries)
