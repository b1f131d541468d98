"""Set-based expansion of a broadcast into one message row per recipient.

The skip rule is `campaigns/recipients.address_or_skip`, written here in SQL.

One `INSERT INTO messages … SELECT … FROM contacts` computes, in the database, every
recipient's row: queued, or skipped with the reason (no address for the channel, an SMS
to a country the org does not allow, an address on the org's suppression list — a LEFT
JOIN on its unique (org, channel, address) key, at most one row per contact — or
unsubscribed from a marketing channel), in the same order as `address_or_skip`. No
contact is loaded into Python, and the
unique (broadcast_id, contact_id) key means a contact reached by two lists or segments
gets one message.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    case,
    false,
    insert,
    literal,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.broadcasts.models import Broadcast
from tidings.campaigns.models import Campaign
from tidings.campaigns.recipients import MARKETING_ONLY
from tidings.contacts.models import Contact
from tidings.db.base import UTCDateTime
from tidings.dispatcher.queries import MESSAGES, count_by_status
from tidings.lists.models import ListMember
from tidings.segments import filters
from tidings.segments.models import Segment
from tidings.segments.service import audience as segment_audience
from tidings.suppressions.models import Suppression

CONTACTS = cast(Table, Contact.__table__)
C = CONTACTS.c
SUPPRESSIONS = cast(Table, Suppression.__table__)


@dataclass(frozen=True, slots=True)
class Expansion:
    contacts: int
    recipients: int
    skipped: int


async def audience_condition(
    session: AsyncSession, *, org_id: int, audience: dict[str, Any]
) -> ColumnElement[bool]:
    """Contacts of the org in any of the audience's lists or segments, or all of them."""
    live = (C.org_id == org_id) & C.erased_at.is_(None)
    if audience.get("send_to_all"):
        return live
    parts: list[ColumnElement[bool]] = []
    list_ids = audience.get("list_ids") or []
    if list_ids:
        members = select(ListMember.contact_id).where(
            ListMember.org_id == org_id, ListMember.list_id.in_(list_ids)
        )
        parts.append(C.id.in_(members))
    segment_ids = audience.get("segment_ids") or []
    if segment_ids:
        saved = await session.scalars(
            select(Segment.filter).where(Segment.org_id == org_id, Segment.id.in_(segment_ids))
        )
        for raw in saved:
            parts.append(segment_audience(session, org_id=org_id, node=filters.parse(raw)))
    return live & or_(false(), *parts)


async def expand(
    session: AsyncSession,
    *,
    broadcast: Broadcast,
    campaign: Campaign,
    sms_countries: Collection[str] | None,
    now: datetime,
) -> Expansion:
    """Insert the broadcast's messages (query helper: the caller owns the transaction).

    `sms_countries` is the org's allowlist (None = every country), as in `address_or_skip`.
    """
    condition = await audience_condition(
        session, org_id=broadcast.org_id, audience=broadcast.audience
    )
    is_email = campaign.channel == "email"
    address = C.email if is_email else C.phone
    # NOT IN is NULL for a NULL country: a number of no country is spelled out as refused.
    refused = (
        false()
        if is_email or sms_countries is None
        else or_(C.phone_country.is_(None), C.phone_country.not_in(sorted(sms_countries)))
    )
    subscription = C.email_status if is_email else C.sms_status
    marketing = campaign.purpose == "marketing"
    unsubscribed = (subscription == "unsubscribed") if marketing else false()
    listed = SUPPRESSIONS.alias("listed")
    on_list = and_(
        listed.c.org_id == broadcast.org_id,
        listed.c.channel == campaign.channel,
        listed.c.address == address,
        true() if marketing else listed.c.reason.not_in(sorted(MARKETING_ONLY)),
    )
    suppressed = listed.c.id.is_not(None)
    status = case(
        (address.is_(None), literal("skipped")),
        (refused, literal("skipped")),
        (suppressed, literal("skipped")),
        (unsubscribed, literal("skipped")),
        else_=literal("queued"),
    )
    reason = case(
        (address.is_(None), literal("no email address" if is_email else "no phone number")),
        (refused, literal("country not allowed")),
        (suppressed, literal("suppressed: ") + listed.c.reason),
        (unsubscribed, literal("unsubscribed")),
        else_=null(),
    )
    rows = (
        select(
            literal(broadcast.org_id),
            literal(broadcast.id),
            literal(campaign.id),
            C.id,
            literal(campaign.channel),
            address,
            status,
            literal(broadcast.is_test),
            reason,
            literal(0),
            literal(now, type_=UTCDateTime()),
            literal(now, type_=UTCDateTime()),
            case((status == "skipped", literal(now, type_=UTCDateTime())), else_=null()),
        )
        .select_from(CONTACTS.outerjoin(listed, on_list))
        .where(condition)
    )
    columns = [
        "org_id",
        "broadcast_id",
        "campaign_id",
        "contact_id",
        "channel",
        "recipient",
        "status",
        "is_test",
        "reason",
        "attempts",
        "due_at",
        "created_at",
        "finished_at",
    ]
    await session.execute(insert(MESSAGES).from_select(columns, rows))
    counts = await count_by_status(session, broadcast_id=broadcast.id)
    skipped = counts.get("skipped", 0)
    total = sum(counts.values())
    return Expansion(contacts=total, recipients=total - skipped, skipped=skipped)
