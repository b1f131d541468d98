"""Invites arriving together for a campaign that has no recipient list yet: every request
is accepted and the campaign ends up with one list holding every invitee."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.support.factories import make_org
from tests.support.sending import campaign
from tidings.campaigns import service as campaigns
from tidings.db.engine import Database
from tidings.invites import service as invites
from tidings.lists.models import ContactList, ListMember


async def test_concurrent_first_invites_make_one_recipient_list(db: Database) -> None:
    org = await make_org(db)
    campaign_id = await campaign(
        db,
        org,
        channel="email",
        subject="s",
        text="{{ invite_link }}",
        template_name="nps",
        name="NPS",
        from_email="a@example.com",
    )

    async def invite(n: int) -> int:
        async with db.transaction() as session:
            batch = await invites.send_invites(
                session,
                org_id=org.id,
                campaign_id=campaign_id,
                recipients=[{"email": f"p{n}-{i}@example.com"} for i in range(3)],
                send_at=None,
            )
        return batch.accepted

    assert await asyncio.gather(*(invite(n) for n in range(8))) == [3] * 8
    async with db.session() as session:
        names = list(await session.scalars(select(ContactList.name)))
        members = await session.scalar(select(func.count()).select_from(ListMember))
        stored = await campaigns.get_campaign(session, org_id=org.id, campaign_id=campaign_id)
        (only,) = await session.scalars(select(ContactList.id))
    assert names == ["NPS recipients"]
    assert stored.list_id == only
    assert members == 24
