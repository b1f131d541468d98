"""Each rule of the outbox has two forms — Python row by row, and its SQL twin — and they
must agree: the skip rule (`address_or_skip` and broadcast expansion) on every kind of
contact, channel, purpose, SMS allowlist and suppression; which suppressions stop which
purpose (also the last look before sending); and the due time."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from sqlalchemy import String, literal, select, update

from tests.support.factories import make_org
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.campaigns import service as campaigns
from tidings.campaigns.models import Campaign
from tidings.campaigns.schemas import CampaignCreate
from tidings.contacts import service as contacts
from tidings.contacts.models import Contact
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.orgs.models import Org
from tidings.outbox.models import Message
from tidings.outbox.rules import (
    address_or_skip,
    due_time,
    due_time_sql,
    falls_back,
    falls_back_sql,
    suppression_applies,
    suppression_applies_sql,
)
from tidings.suppressions import service as suppressions
from tidings.templates import service as templates

ROWS = [
    {"email": "only-email@example.com"},
    {"phone": "+33612345678"},
    {"phone": "+14155550123", "email": "us@example.com"},
    {"phone": "+80012345678"},  # no country
    {"phone": "+33612345679", "subscriptions": {"sms": "unsubscribed"}},
    {"phone": "+14155550124", "subscriptions": {"sms": "unsubscribed"}},
    {"email": "gone@example.com", "subscriptions": {"email": "unsubscribed"}},
]
ALLOWLISTS = [None, ["FR"], []]
SUPPRESSED = [
    ("email", "us@example.com", "hard_bounce"),
    ("email", "gone@example.com", "complaint"),
    ("email", "nobody-has-this@example.com", "manual"),
    ("sms", "+33612345678", "unsubscribed"),  # marketing only
    ("sms", "+14155550124", "stop_keyword"),  # also unsubscribed as a contact
    ("sms", "+80012345678", "hard_bounce"),  # no country: refused by an allowlist first
]


async def _campaign(db: Database, org_id: int, *, channel: str, purpose: str) -> Campaign:
    async with db.transaction() as session:
        template = await templates.create_template(
            session,
            org_id=org_id,
            renderer=Renderer(),
            name=f"{channel}-{purpose}",
            channel=channel,
            subject="s" if channel == "email" else None,
            html=None,
            text="t",
        )
    body = {"name": f"{channel}-{purpose}", "channel": channel, "template_id": template.id}
    body |= {"purpose": purpose, "from_email": "a@example.com" if channel == "email" else None}
    async with db.transaction() as session:
        return await campaigns.create_campaign(
            session, org_id=org_id, body=CampaignCreate.model_validate(body)
        )


@pytest.mark.parametrize(
    ("channel", "purpose"),
    list(itertools.product(["email", "sms"], ["marketing", "transactional"])),
)
async def test_expansion_and_address_or_skip_agree(
    db: Database, channel: str, purpose: str
) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        report = await contacts.upsert_contacts(session, org_id=org.id, rows=ROWS)
    assert report.failed == 0, report.errors
    async with db.session() as session:
        for on, address, why in SUPPRESSED:
            await suppressions.suppress(
                session, org_id=org.id, channel=on, address=address, reason=why, source="test"
            )
        await session.commit()
    campaign = await _campaign(db, org.id, channel=channel, purpose=purpose)
    for n, allowed in enumerate(ALLOWLISTS):
        async with db.session() as session:
            await session.execute(update(Org).where(Org.id == org.id).values(sms_countries=allowed))
            await session.commit()
        async with db.transaction() as session:
            created = await broadcasts.create_broadcast(
                session,
                org_id=org.id,
                body=BroadcastCreate(name=f"b{n}", campaign_id=campaign.id, send_to_all=True),
            )
        async with db.transaction() as session:
            assert await broadcasts.start_due(
                session, broadcast_id=created.broadcast.id, now=utcnow()
            )
        async with db.session() as session:
            people = list(await session.scalars(select(Contact).where(Contact.org_id == org.id)))
            messages = await session.execute(
                select(Message.contact_id, Message.recipient, Message.status, Message.reason).where(
                    Message.broadcast_id == created.broadcast.id
                )
            )
            expanded = {m.contact_id: (m.recipient, m.status, m.reason) for m in messages}
            listed = await suppressions.reasons(
                session,
                org_id=org.id,
                channel=channel,
                addresses=[p.email if channel == "email" else p.phone for p in people],
            )
        expected = {}
        for person in people:
            address, reason = address_or_skip(
                campaign, person, sms_countries=allowed, suppressed=listed
            )
            expected[person.id] = (address, "skipped" if reason else "queued", reason)
        assert expanded == expected, allowed
        if allowed is None:  # the rule did see suppressed addresses
            reasons = {reason for _, _, reason in expected.values()}
            assert any(r and r.startswith("suppressed: ") for r in reasons), reasons


@pytest.mark.parametrize("purpose", ["marketing", "transactional"])
async def test_which_suppressions_stop_which_purpose_agree(db: Database, purpose: str) -> None:
    reasons = sorted(suppressions.REASONS)
    async with db.session() as session:
        known = await session.execute(
            select(
                *(
                    suppression_applies_sql(literal(r), marketing=purpose == "marketing")
                    for r in reasons
                )
            )
        )
        per_row = await session.execute(
            select(*(suppression_applies_sql(literal(r), marketing=literal(purpose == "marketing"))
                     for r in reasons))
        )  # fmt: skip
    expected = tuple(suppression_applies(r, purpose=purpose) for r in reasons)
    assert tuple(bool(v) for v in known.one()) == expected
    assert tuple(bool(v) for v in per_row.one()) == expected


async def test_due_time_agrees(db: Database) -> None:
    now = utcnow().replace(microsecond=0)
    for requested in (None, now - timedelta(hours=1), now + timedelta(days=3)):
        async with db.session() as session:
            in_sql = await session.scalar(select(due_time_sql(requested, now=now)))
        assert in_sql == due_time(requested, now=now)


async def test_which_skips_fall_back_agree(db: Database) -> None:
    reasons = ["no email address", "no phone number", "country not allowed",
               "suppressed: hard_bounce", "suppressed: complaint", "unsubscribed"]  # fmt: skip
    async with db.session() as session:
        in_sql = (
            await session.execute(select(*(falls_back_sql(literal(r)) for r in reasons)))
        ).one()
        of_none = await session.scalar(select(falls_back_sql(literal(None, String()))))
    assert [bool(v) for v in in_sql] == [falls_back(r) for r in reasons]
    assert [falls_back(r) for r in reasons] == [True, True, False, True, True, True]
    assert not of_none
    assert not falls_back(None)
