"""The due-time rule's two forms agree (`rules.due_time` with `rules.recipient_zone`, row
by row, and `rules.due_time_sql`, one CASE per distinct zone in an expansion) for local
times and quiet hours on the days the clocks change, on both databases; and the estimate
equals what the expansion then makes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select, update

from tests.integration.outbox.test_rules import _campaign
from tests.support.factories import make_org
from tidings.broadcasts import preview
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns.models import Campaign
from tidings.contacts import service as contacts
from tidings.contacts.models import Contact
from tidings.credits import service as credits
from tidings.db.engine import Database
from tidings.orgs.models import Org
from tidings.outbox.models import Message
from tidings.outbox.rules import due_time, recipient_zone
from tidings.outbox.timing import send_timing

ROWS: list[dict[str, Any]] = [
    {"email": "paris@example.com", "timezone": "Europe/Paris"},
    {"email": "london@example.com", "timezone": "Europe/London", "phone": "+33612345670"},
    {"email": "ny@example.com", "timezone": "America/New_York"},
    {"email": "sydney@example.com", "timezone": "Australia/Sydney", "phone": "+61412345678"},
    {"email": "fr@example.com", "phone": "+33612345671"},  # France: one zone
    {"email": "jp@example.com", "phone": "+819012345678"},  # Japan: one zone
    {"email": "us@example.com", "phone": "+14155550123"},  # +1: the org's zone
    {"email": "none@example.com"},  # the org's zone
    {"email": "gone@example.com", "timezone": "Asia/Tokyo",
     "subscriptions": {"email": "unsubscribed"}},
]  # fmt: skip

CASES = [  # (now, local_time, local_date, quiet hours, sending days)
    (datetime(2026, 3, 28, 12, tzinfo=UTC), "09:30", date(2026, 3, 29), None, None),
    (datetime(2026, 3, 7, 20, tzinfo=UTC), "09:30", None, None, None),
    (datetime(2026, 4, 4, 10, tzinfo=UTC), "02:30", None, None, None),
    (datetime(2026, 10, 3, 12, tzinfo=UTC), None, None, {"start": "21:00", "end": "08:00"}, None),
    (datetime(2026, 10, 24, 22, tzinfo=UTC), "07:00", None, {"start": "21:00", "end": "08:00"},
     ["mon", "tue", "wed", "thu", "fri"]),
]  # fmt: skip


async def _setup(
    db: Database,
    *,
    quiet: dict[str, str] | None,
    days: list[str] | None,
    channel: str = "email",
) -> Any:
    org = await make_org(db)
    async with db.transaction() as session:
        report = await contacts.upsert_contacts(session, org_id=org.id, rows=ROWS)
        assert report.failed == 0, report.errors
        await session.execute(
            update(Org)
            .where(Org.id == org.id)
            .values(
                timezone="America/Los_Angeles",
                quiet_hours={channel: quiet} if quiet else None,
                sending_days=days,
            )
        )
    return org


@pytest.mark.parametrize("channel", ["email", "sms"])
@pytest.mark.parametrize(("now", "local_time", "local_date", "quiet", "days"), CASES)
async def test_expansion_and_due_time_agree(
    db: Database,
    channel: str,
    now: datetime,
    local_time: str | None,
    local_date: date | None,
    quiet: dict[str, str] | None,
    days: list[str] | None,
) -> None:
    org = await _setup(db, quiet=quiet, days=days, channel=channel)
    campaign = await _campaign(db, org.id, channel=channel, purpose="marketing")
    body = BroadcastCreate(
        name="local", campaign_id=campaign.id, send_to_all=True,
        local_time=local_time, local_date=local_date,
    )  # fmt: skip
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(session, org_id=org.id, body=body, now=now)
        broadcast_id = created.broadcast.id
    async with db.transaction() as session:
        estimated = await preview.estimate_broadcast(
            session, org_id=org.id, broadcast_id=broadcast_id, now=now
        )
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=now)
    async with db.session() as session:
        people = {p.id: p for p in await session.scalars(select(Contact))}
        dbo = await session.get(Org, org.id)
        assert dbo is not None
        version = await broadcasts.frozen(
            session, broadcast=await broadcasts.get_broadcast(
                session, org_id=org.id, broadcast_id=broadcast_id)
        )  # fmt: skip
        rows = (
            await session.execute(
                select(Message.contact_id, Message.due_at, Message.status).where(
                    Message.broadcast_id == broadcast_id
                )
            )
        ).all()
    timing, org_zone = send_timing(
        dbo, version, local_time=local_time,
        local_date=local_date.isoformat() if local_date else None,
    )  # fmt: skip
    assert timing.per_zone
    expected = {
        cid: due_time(
            None, now=now, zone=recipient_zone(people[cid], org_zone=org_zone), timing=timing
        )
        for cid, _, _ in rows
    }
    assert {cid: due for cid, due, _ in rows} == expected
    queued = [due for _, due, status in rows if status == "queued"]
    assert len(set(queued)) >= 3  # the zones do differ
    # The estimate said what the expansion made.
    assert estimated.recipients == len(queued) == (8 if channel == "email" else 5)
    assert estimated.skipped == (
        {"unsubscribed": 1} if channel == "email" else {"no phone number": 4}
    )
    assert estimated.schedule[-1][0] == max(queued)
    assert sum(n for _, n in estimated.schedule) == len(queued)


@pytest.mark.parametrize("fallback", [False, True])
async def test_estimate_equals_expansion_with_prices_and_explicit_recipients(
    db: Database, fallback: bool
) -> None:
    org = await _setup(db, quiet=None, days=None)
    campaign: Campaign = await _campaign(db, org.id, channel="sms", purpose="marketing")
    if fallback:  # an email to those without a phone: their own zone's 09:30 too
        other = await _campaign(db, org.id, channel="email", purpose="marketing")
        async with db.transaction() as session:
            await session.execute(
                update(Campaign)
                .where(Campaign.id == campaign.id)
                .values(fallback_campaign_id=other.id)
            )
    async with db.transaction() as session:
        await credits.set_prices(
            session,
            org_id=org.id,
            prices=[credits.PriceRow("sms", "FR", 50_000), credits.PriceRow("sms", "*", 80_000)],
        )
        await credits.top_up(session, org_id=org.id, amount=10_000_000)
    now = datetime(2026, 3, 28, 12, tzinfo=UTC)
    body = BroadcastCreate(
        name="sms", campaign_id=campaign.id, send_to_all=True, local_time="09:30",
        recipients=[{"phone": "+33612345699", "timezone": "Asia/Tokyo"}, {"email": "x@e.com"}],
    )  # fmt: skip
    async with db.transaction() as session:
        dry = await preview.dry_run(session, org_id=org.id, body=body, now=now)
    async with db.session() as session:  # the dry run left nothing behind
        assert await session.scalar(select(func.count()).select_from(Message)) == 0
        assert await credits.balance_of(session, org_id=org.id) == 10_000_000
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(session, org_id=org.id, body=body, now=now)
        broadcast_id = created.broadcast.id
    async with db.transaction() as session:
        estimated = await preview.estimate_broadcast(
            session, org_id=org.id, broadcast_id=broadcast_id, now=now
        )
    async with db.transaction() as session:
        assert await broadcasts.start_due(session, broadcast_id=broadcast_id, now=now)
    async with db.session() as session:
        made = (
            await session.execute(
                select(Message.status, Message.reason, Message.due_at, Message.cost).where(
                    Message.broadcast_id == broadcast_id
                )
            )
        ).all()
        instead = (
            await session.execute(
                select(Message.recipient, Message.due_at, Message.cost).where(
                    Message.org_id == org.id, Message.fallback_of.is_not(None)
                )
            )
        ).all()
        balance = await credits.balance_of(session, org_id=org.id)
    # Those without a phone but unsubscribed from email ("gone"): no message at all.
    assert sorted(f.recipient for f in instead) == (
        ["none@example.com", "ny@example.com", "paris@example.com", "x@e.com"] if fallback else []
    )
    assert all(f.cost == 0 for f in instead)  # no price for email: free
    queued = [m for m in made if m.status == "queued"]
    skips: dict[str, int] = {}
    for m in made:
        if m.status == "skipped":
            skips[m.reason] = skips.get(m.reason, 0) + 1
    for figures in (estimated, dry):
        assert figures.recipients == len(queued) == 6  # 5 phones in ROWS + the explicit one
        assert figures.skipped == skips == {"no phone number": 5}
        assert figures.cost == sum(m.cost for m in queued) == 3 * 50_000 + 3 * 80_000
        assert figures.sms_segments == 6
        assert figures.fallbacks == len(instead)
        assert [at for at, _ in figures.schedule] == sorted(
            {m.due_at for m in queued} | {f.due_at for f in instead}
        )
        assert sum(n for _, n in figures.schedule) == len(queued) + len(instead)
    assert balance == 10_000_000 - estimated.cost
