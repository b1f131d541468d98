from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.factories import make_org
from tidings.contacts import service
from tidings.db.engine import Database
from tidings.errors import NotFound
from tidings.lists import service as lists
from tidings.lists.models import ListMember


async def test_erase_empties_personal_data_and_keeps_the_row(db: Database) -> None:
    org = await make_org(db)
    async with db.session() as session:
        panel = await lists.create_list(session, org_id=org.id, name="panel", description=None)
    async with db.session() as session:
        report = await service.upsert_contacts(
            session,
            org_id=org.id,
            rows=[
                {
                    "email": "ada@example.com",
                    "phone": "+14155550100",
                    "first_name": "Ada",
                    "last_name": "L",
                    "attributes": {"city": "London"},
                    "locale": "en",
                    "timezone": "Europe/London",
                }
            ],
            list_ids=[panel.list.id],
        )
    contact_id = report.outcomes[0].contact_id
    assert contact_id is not None

    async with db.session() as session:
        erased = await service.erase_contact(session, org_id=org.id, contact_id=contact_id)
    async with db.session() as session:
        again = await service.erase_contact(session, org_id=org.id, contact_id=contact_id)
        stored = await service.get_contact(session, org_id=org.id, contact_id=contact_id)
        members = list(await session.scalars(select(ListMember.contact_id)))

    personal = (
        stored.email,
        stored.phone,
        stored.first_name,
        stored.last_name,
        stored.locale,
        stored.timezone,
    )
    assert personal == (None,) * 6
    assert stored.attributes == {}
    assert (stored.email_status, stored.sms_status) == ("unsubscribed", "unsubscribed")
    assert stored.erased_at is not None
    assert again.erased_at == erased.erased_at
    assert members == []

    # The address is free again: a new sign-up is a new contact, not the erased one.
    async with db.session() as session:
        fresh = await service.upsert_contacts(
            session, org_id=org.id, rows=[{"email": "ada@example.com"}]
        )
    assert fresh.created == 1
    assert fresh.outcomes[0].contact_id != contact_id


async def test_erasing_another_orgs_contact_is_not_found(db: Database) -> None:
    a = await make_org(db, "A")
    b = await make_org(db, "B")
    async with db.session() as session:
        report = await service.upsert_contacts(
            session, org_id=a.id, rows=[{"email": "x@example.com"}]
        )
    contact_id = report.outcomes[0].contact_id
    assert contact_id is not None
    async with db.session() as session:
        with pytest.raises(NotFound):
            await service.erase_contact(session, org_id=b.id, contact_id=contact_id)
    async with db.session() as session:
        still = await service.get_contact(session, org_id=a.id, contact_id=contact_id)
    assert still.email == "x@example.com"
