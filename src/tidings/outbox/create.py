"""Every message row is created here: a broadcast's audience expanded set-based, a
broadcast's explicit recipients held until it starts, and one message at a time (single
sends, link invites). Each applies the skip rule and the due-time rule of `outbox.rules`
— in SQL for the expansion, in Python for the others — and creates the row QUEUED, HELD
or SKIPPED with its reason. Query helpers: the caller owns the transaction.

    expand(broadcast)   INSERT INTO messages … SELECT … FROM contacts LEFT JOIN suppressions
                        one statement, no contact loaded into Python; the unique
                        (broadcast_id, contact_id) key gives a contact reached by two
                        lists or segments one message. When the due time depends on the
                        recipient's zone (local time, quiet hours), one SELECT DISTINCT
                        (timezone, phone_country) first (`outbox.timing`): the zones, whose
                        instants
                        `rules.due_time_sql` computes in Python, one per zone
    (then, for a campaign with a fallback campaign, `outbox.fallback.expand`)
    estimate(broadcast) the same SELECT, grouped instead of inserted (read only)
    hold(recipients)    INSERT … SELECT from one JSON array of rows (HELD or SKIPPED)
    add_one(contact)    one ORM row (QUEUED or SKIPPED), flushed for its id
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Table,
    case,
    func,
    insert,
    literal,
    null,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from tidings.campaigns.models import CampaignVersion
from tidings.contacts.models import Contact
from tidings.db.base import JSONDoc, UTCDateTime
from tidings.db.dialect import json_rows, rows_by_keys
from tidings.outbox.local import Timing
from tidings.outbox.models import Message
from tidings.outbox.rules import (
    Place,
    address_or_skip,
    due_time,
    recipient_zone,
    skip_reason_sql,
    suppression_match,
)
from tidings.outbox.status import MessageStatus
from tidings.outbox.timing import due_column, due_schedule, resolve
from tidings.suppressions import service as suppressions
from tidings.suppressions.models import Suppression

MESSAGES = cast(Table, Message.__table__)
CONTACTS = cast(Table, Contact.__table__)
SUPPRESSIONS = cast(Table, Suppression.__table__)
S = MessageStatus


@dataclass(frozen=True, slots=True)
class Batch:
    """What the messages of one send share: its org, broadcast (None: a single send),
    the campaign as the send froze it (`campaigns.versions.freeze`), whether a test key
    sent it, and when it was accepted; how its due time moves in each recipient's zone
    (`send_timing`) and the org's zone for recipients of no known zone — read from the org
    and the campaign when not given (single sends and invites: quiet hours, no local
    time)."""

    org_id: int
    broadcast_id: int | None
    campaign: CampaignVersion
    is_test: bool
    now: datetime
    timing: Timing | None = None  # None: the org's and campaign's (`send_timing`)
    org_zone: str = "UTC"


async def _timing(session: AsyncSession, *, batch: Batch) -> tuple[Timing, str]:
    return await resolve(
        session, org_id=batch.org_id, campaign=batch.campaign, given=batch.timing,
        org_zone=batch.org_zone,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Expansion:
    contacts: int
    recipients: int
    skipped: int
    schedule: list[tuple[datetime, int]]  # (due at, messages), in time order


async def expand(
    session: AsyncSession,
    *,
    batch: Batch,
    audience: ColumnElement[bool],
    sms_countries: Collection[str] | None,
) -> Expansion:
    """Insert a message for every contact matching `audience` (`outbox.audience`), QUEUED
    and due now (or when its zone's `Timing` says), or SKIPPED with its reason; returns
    the broadcast's counts by status and when its messages come due."""
    campaign = batch.campaign
    timing, org_zone = await _timing(session, batch=batch)
    due = await due_column(
        session, timing=timing, org_zone=org_zone, now=batch.now, audience=audience
    )
    listed = SUPPRESSIONS.alias("listed")
    address, reason = skip_reason_sql(
        CONTACTS,
        listed,
        channel=campaign.channel,
        purpose=campaign.purpose,
        sms_countries=sms_countries,
    )
    on_list = suppression_match(
        listed,
        org_id=batch.org_id,
        channel=campaign.channel,
        address=address,
        marketing=campaign.purpose == "marketing",
    )
    stamp = literal(batch.now, type_=UTCDateTime())
    status = case((reason.is_(None), literal(S.QUEUED.value)), else_=literal(S.SKIPPED.value))
    rows = (
        select(
            literal(batch.org_id),
            literal(batch.broadcast_id),
            literal(campaign.campaign_id),
            literal(campaign.id),
            CONTACTS.c.id,
            literal(campaign.channel),
            address,
            status,
            literal(batch.is_test),
            reason,
            literal(0),
            due,
            stamp,
            case((reason.is_(None), null()), else_=stamp),
        )
        .select_from(CONTACTS.outerjoin(listed, on_list))
        .where(audience)
    )
    columns = ["org_id", "broadcast_id", "campaign_id", "campaign_version_id", "contact_id",
               "channel", "recipient",
               "status", "is_test", "reason", "attempts", "due_at", "created_at",
               "finished_at"]  # fmt: skip
    await session.execute(insert(MESSAGES).from_select(columns, rows))
    assert batch.broadcast_id is not None
    counts = await count_by_status(session, broadcast_id=batch.broadcast_id)
    skipped = counts.get(S.SKIPPED, 0)
    total = sum(counts.values())
    schedule = (
        await due_schedule(session, broadcast_id=batch.broadcast_id)
        if timing.per_zone
        else [(batch.now, total - skipped)][: 1 if total > skipped else 0]  # all at once
    )
    return Expansion(contacts=total, recipients=total - skipped, skipped=skipped, schedule=schedule)


@dataclass(frozen=True, slots=True)
class Estimate:
    """What expanding the audience would make, without making it: counts by status,
    skips by reason, the due schedule, and the cost each country's price gives."""

    contacts: int
    recipients: int
    skipped: dict[str, int]
    schedule: list[tuple[datetime, int]]
    countries: dict[str | None, int]  # SMS recipients by their phone's country


async def estimate(
    session: AsyncSession,
    *,
    batch: Batch,
    audience: ColumnElement[bool],
    sms_countries: Collection[str] | None,
) -> Estimate:
    """`expand`'s SELECT, grouped instead of inserted (read only): the same skip-rule
    expression, grouped with what places a contact (timezone, phone_country), each
    group's due time then given by `due_time` — the Python twin of the expansion's
    CASE, checked equal to it — so that one scan both finds the zones and counts them."""
    campaign = batch.campaign
    listed = SUPPRESSIONS.alias("listed")
    address, reason = skip_reason_sql(
        CONTACTS,
        listed,
        channel=campaign.channel,
        purpose=campaign.purpose,
        sms_countries=sms_countries,
    )
    on_list = suppression_match(
        listed,
        org_id=batch.org_id,
        channel=campaign.channel,
        address=address,
        marketing=campaign.purpose == "marketing",
    )
    c = CONTACTS.c
    timing, org_zone = await _timing(session, batch=batch)
    placed = timing.per_zone
    timezone = c.timezone if placed else literal(None, String())
    country = c.phone_country if placed or campaign.channel == "sms" else literal(None, String())
    keys = [k for k, used in ((timezone, placed), (country, placed or campaign.channel == "sms"))
            if used]  # fmt: skip
    grouped = (
        select(timezone, country, reason, func.count())
        .select_from(CONTACTS.outerjoin(listed, on_list))
        .where(audience)
        .group_by(*keys, reason)
    )
    skipped: dict[str, int] = {}
    by_due: dict[datetime, int] = {}
    countries: dict[str | None, int] = {}
    total = 0
    for tz, where, why, n in await session.execute(grouped):
        total += int(n)
        if why is not None:
            skipped[why] = skipped.get(why, 0) + int(n)
            continue
        zone = recipient_zone(Place(tz, where), org_zone=org_zone) if placed else None
        at = due_time(None, now=batch.now, zone=zone, timing=timing)
        by_due[at] = by_due.get(at, 0) + int(n)
        if campaign.channel == "sms":
            countries[where] = countries.get(where, 0) + int(n)
    recipients = total - sum(skipped.values())
    if campaign.channel != "sms" and recipients:
        countries[None] = recipients
    return Estimate(total, recipients, skipped, sorted(by_due.items()), countries)


async def count_by_status(session: AsyncSession, *, broadcast_id: int) -> dict[str, int]:
    """Messages of a broadcast per status (read only)."""
    m = MESSAGES.c
    rows = await session.execute(
        select(m.status, func.count()).where(m.broadcast_id == broadcast_id).group_by(m.status)
    )
    return {status: int(n) for status, n in rows}


async def hold(
    session: AsyncSession,
    *,
    batch: Batch,
    recipients: Mapping[int, dict[str, Any] | None],
    sms_countries: Collection[str] | None,
    due_at: datetime | None,
) -> dict[int, str]:
    """A HELD message for each of the broadcast's explicit recipients (contact id → its
    message's variables), due at `due_at` once the broadcast starts, or SKIPPED; returns
    the skip reasons by contact id."""
    if not recipients:
        return {}
    campaign = batch.campaign
    found = await session.execute(
        rows_by_keys(
            session,
            table=CONTACTS,
            org_id=batch.org_id,
            column=CONTACTS.c.id,
            keys=list(recipients),
            columns=(
                "id",
                "email",
                "phone",
                "phone_country",
                "email_status",
                "sms_status",
                "timezone",
            ),
        )
    )
    contacts = found.all()
    suppressed = await suppressions.reasons(
        session,
        org_id=batch.org_id,
        channel=campaign.channel,
        addresses=(c.email if campaign.channel == "email" else c.phone for c in contacts),
    )
    timing, org_zone = await _timing(session, batch=batch)
    rows: list[dict[str, Any]] = []
    skipped: dict[int, str] = {}
    dues: dict[datetime, int] = {}  # each distinct due time, numbered: sent as its number
    for contact in contacts:
        address, reason = address_or_skip(
            campaign, contact, sms_countries=sms_countries, suppressed=suppressed
        )
        zone = recipient_zone(contact, org_zone=org_zone)
        rows.append(
            {
                "contact_id": contact.id,
                "recipient": address,
                "variables": recipients[contact.id],
                "status": S.SKIPPED.value if reason else S.HELD.value,
                "reason": reason,
                "due": dues.setdefault(
                    due_time(due_at, now=batch.now, zone=zone, timing=timing), len(dues)
                ),
            }
        )
        if reason:
            skipped[contact.id] = reason
    v = json_rows(session, rows, _HELD)
    m, stamp = MESSAGES.c, literal(batch.now, MESSAGES.c.created_at.type)
    constants = {
        "org_id": literal(batch.org_id, m.org_id.type),
        "broadcast_id": literal(batch.broadcast_id, m.broadcast_id.type),
        "campaign_id": literal(campaign.campaign_id, m.campaign_id.type),
        "campaign_version_id": literal(campaign.id, m.campaign_version_id.type),
        "channel": literal(campaign.channel, m.channel.type),
        "is_test": literal(batch.is_test, m.is_test.type),
        "attempts": literal(0, m.attempts.type),
        "due_at": case(
            *((v["due"] == n, literal(at, m.due_at.type)) for at, n in dues.items()),
            else_=literal(due_time(due_at, now=batch.now), m.due_at.type),
        ),
        "created_at": stamp,
        "finished_at": case((v["status"] == S.SKIPPED.value, stamp), else_=null()),
    }
    own = {name: v[name] for name in _HELD if name != "due"}
    held = select(*own.values(), *constants.values())
    await session.execute(insert(MESSAGES).from_select([*own, *constants], held))
    return skipped


_HELD: dict[str, TypeEngine[Any]] = {
    "contact_id": BigInteger(),
    "recipient": String(),
    "variables": JSONDoc,
    "status": String(),
    "reason": String(),
    "due": Integer(),  # the number of its due time (`dues`)
}  # a held message's own columns; the rest are the broadcast's


async def add_one(
    session: AsyncSession,
    *,
    batch: Batch,
    contact: Contact,
    variables: dict[str, Any] | None,
    sms_countries: Collection[str] | None,
    send_at: datetime | None = None,
) -> Message:
    """One message to `contact`, QUEUED (due at `send_at`, else now) or SKIPPED with its
    reason; flushed, so it has its id."""
    campaign = batch.campaign
    suppressed = await suppressions.reasons(
        session,
        org_id=batch.org_id,
        channel=campaign.channel,
        addresses=[contact.email if campaign.channel == "email" else contact.phone],
    )
    address, reason = address_or_skip(
        campaign, contact, sms_countries=sms_countries, suppressed=suppressed
    )
    timing, org_zone = await _timing(session, batch=batch)
    zone = recipient_zone(contact, org_zone=org_zone)
    message = Message(
        org_id=batch.org_id,
        broadcast_id=batch.broadcast_id,
        campaign_id=campaign.campaign_id,
        campaign_version_id=campaign.id,
        contact_id=contact.id,
        channel=campaign.channel,
        recipient=address,
        variables=variables or None,
        status=S.SKIPPED if reason else S.QUEUED,
        is_test=batch.is_test,
        reason=reason,
        attempts=0,
        due_at=due_time(send_at, now=batch.now, zone=zone, timing=timing),
        created_at=batch.now,
        finished_at=batch.now if reason else None,
    )
    session.add(message)
    await session.flush()
    return message
