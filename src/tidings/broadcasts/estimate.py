"""Know before you send: what a broadcast would make if it started now — recipients,
skips by reason, SMS segments, cost, whether the balance covers it, and when its last
message comes due — computed by the expansion's own SQL (`outbox.create.estimate`), one
grouped SELECT, no message created. Read only.

A broadcast that has not started is estimated with the campaign it would send: the one it
froze (scheduled), or its campaign as it stands (a draft). Its explicit recipients are
messages already (HELD or SKIPPED since it was created): they are counted as they are,
and what they reserved is `reserved`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.status import BroadcastStatus
from tidings.campaigns.models import Campaign, CampaignVersion
from tidings.contacts.models import Contact
from tidings.content.sms import shape
from tidings.credits.service import balance_of, price_of, price_table
from tidings.errors import Conflict, InsufficientCredit
from tidings.orgs.service import get_org
from tidings.outbox import create as outbox
from tidings.outbox import fallback as fallbacks
from tidings.outbox.audience import audience_condition
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus
from tidings.outbox.timing import send_timing
from tidings.templates.models import Template, TemplateVersion

MESSAGES = cast(Table, Message.__table__)
CONTACTS = cast(Table, Contact.__table__)
MS = MessageStatus


@dataclass(frozen=True, slots=True)
class Figures:
    """Amounts in micro-credits."""

    channel: str
    contacts: int
    recipients: int
    skipped: dict[str, int]
    sms_segments: int
    cost: int
    reserved: int
    balance: int
    schedule: list[tuple[datetime, int]]  # fallback messages included
    fallback_channel: str | None = None  # the fallback campaign's, when it has one
    fallbacks: int = 0  # fallback messages instead of skipped ones (counted in `skipped`)

    @property
    def covered(self) -> bool:
        return self.cost - self.reserved <= self.balance


async def estimate(
    session: AsyncSession, *, broadcast: Broadcast, now: datetime, version: CampaignVersion
) -> Figures:
    """The figures of `broadcast` (not started) sent with `version`, starting at `now`."""
    if broadcast.started_at is not None or broadcast.status not in (
        BroadcastStatus.DRAFT,
        BroadcastStatus.SCHEDULED,
    ):
        raise Conflict(f"a {broadcast.status} broadcast has started: read its counters")
    org = await get_org(session, org_id=broadcast.org_id)
    timing, org_zone = send_timing(
        org, version, local_time=broadcast.local_time, local_date=broadcast.local_date
    )
    start = max(now, broadcast.scheduled_at or now)
    batch = outbox.Batch(
        broadcast.org_id, broadcast.id, version, broadcast.is_test, start, timing, org_zone
    )
    audience = await audience_condition(
        session, org_id=broadcast.org_id, audience=broadcast.audience, broadcast_id=broadcast.id
    )
    found = await outbox.estimate(
        session, batch=batch, audience=audience, sms_countries=org.sms_countries
    )
    skipped, schedule = dict(found.skipped), dict(found.schedule)
    fallback = await _fallback_version(session, version=version)
    fell_back: fallbacks.FallbackEstimate | None = None
    if fallback is not None:
        fallback_timing, _ = send_timing(
            org, fallback, local_time=broadcast.local_time, local_date=broadcast.local_date
        )
        fell_back = await fallbacks.estimate(
            session,
            batch=batch,
            fallback=outbox.Batch(
                broadcast.org_id,
                broadcast.id,
                fallback,
                broadcast.is_test,
                start,
                fallback_timing,
                org_zone,
            ),
            audience=audience,
            sms_countries=org.sms_countries,
        )
        for at, n in fell_back.schedule:
            schedule[at] = schedule.get(at, 0) + n
    countries = dict(found.countries)
    held = await _held(session, broadcast_id=broadcast.id, sms=version.channel == "sms")
    for status, reason, due, country, n in held:
        if status == MS.SKIPPED:
            skipped[reason] = skipped.get(reason, 0) + n
        else:
            schedule[due] = schedule.get(due, 0) + n
            countries[country] = countries.get(country, 0) + n
    recipients = sum(countries.values())
    per_message = await _segments(session, version=version) if version.channel == "sms" else 0
    table = await price_table(session, org_id=broadcast.org_id, channel=version.channel)
    cost = 0
    if not broadcast.is_test:
        each = max(per_message, 1)
        cost = sum(price_of(table, country=c) * n * each for c, n in countries.items())
    reserved = int(
        await session.scalar(
            select(func.coalesce(func.sum(MESSAGES.c.cost), 0)).where(
                MESSAGES.c.broadcast_id == broadcast.id, MESSAGES.c.status == MS.HELD
            )
        )
        or 0
    )
    segments = per_message * recipients
    if fallback is not None and fell_back is not None and fell_back.recipients:
        fallback_each = (
            await _segments(session, version=fallback) if fallback.channel == "sms" else 0
        )
        if fallback.channel == "sms":
            segments += fallback_each * fell_back.recipients
        fallback_table = await price_table(
            session, org_id=broadcast.org_id, channel=fallback.channel
        )
        if not broadcast.is_test:
            cost += sum(
                price_of(fallback_table, country=c) * n * max(fallback_each, 1)
                for c, n in fell_back.countries.items()
            )
    return Figures(
        channel=version.channel,
        contacts=recipients + sum(skipped.values()),
        recipients=recipients,
        skipped=skipped,
        sms_segments=segments,
        cost=cost,
        reserved=reserved,
        balance=await balance_of(session, org_id=broadcast.org_id),
        schedule=sorted(schedule.items()),
        fallback_channel=None if fallback is None else fallback.channel,
        fallbacks=0 if fell_back is None else fell_back.recipients,
    )


async def _fallback_version(
    session: AsyncSession, *, version: CampaignVersion
) -> CampaignVersion | None:
    """The fallback campaign `version` would send: the one it froze, or, for a draft's
    unsaved version (`draft_version`), its campaign's fallback as it stands."""
    if version.fallback_version_id is not None:
        return await session.get(CampaignVersion, version.fallback_version_id)
    if version.id is not None:
        return None  # frozen without a fallback
    campaign = await session.get(Campaign, version.campaign_id)
    if campaign is None or campaign.fallback_campaign_id is None:
        return None
    fallback = await session.get(Campaign, campaign.fallback_campaign_id)
    return None if fallback is None else await draft_version(session, campaign=fallback)


def require_covered(figures: Figures) -> None:
    """InsufficientCredit (402) with the figures when the balance cannot cover the send."""
    if not figures.covered:
        raise InsufficientCredit(needed=figures.cost - figures.reserved, balance=figures.balance)


async def _held(
    session: AsyncSession, *, broadcast_id: int, sms: bool
) -> list[tuple[str, str, datetime, str | None, int]]:
    """The broadcast's explicit recipients by (status, reason, due time, country)."""
    m, c = MESSAGES.c, CONTACTS.c
    country = c.phone_country if sms else None
    columns = [m.status, m.reason, m.due_at]
    query = (
        select(*columns, *([country] if country is not None else []), func.count())
        .select_from(MESSAGES.join(CONTACTS, c.id == m.contact_id))
        .where(m.broadcast_id == broadcast_id, m.status.in_([MS.HELD.value, MS.SKIPPED.value]))
        .group_by(*columns, *([country] if country is not None else []))
    )
    rows = []
    for row in await session.execute(query):
        where = row[3] if sms else None
        rows.append((row[0], row[1], row[2], where, int(row[-1])))
    return rows


async def _segments(session: AsyncSession, *, version: CampaignVersion) -> int:
    """The segments of the SMS template's text as written (1 when it has none)."""
    text = await session.scalar(
        select(TemplateVersion.text).where(TemplateVersion.id == version.template_version_id)
    )
    return shape(text).segments if text else 1


async def draft_version(session: AsyncSession, *, campaign: Campaign) -> CampaignVersion:
    """What a draft would freeze, unsaved: the campaign's fields the estimate reads and its
    template's current version (a draft estimated is not accepted: nothing is frozen)."""
    template_version_id = await session.scalar(
        select(TemplateVersion.id)
        .join(Template, Template.id == TemplateVersion.template_id)
        .where(Template.id == campaign.template_id, TemplateVersion.number == Template.version)
    )
    if template_version_id is None:
        raise Conflict(f"campaign {campaign.id}'s template {campaign.template_id} was deleted")
    return CampaignVersion(
        org_id=campaign.org_id,
        campaign_id=campaign.id,
        template_version_id=template_version_id,
        channel=campaign.channel,
        purpose=campaign.purpose,
        quiet_hours=campaign.quiet_hours,
    )
