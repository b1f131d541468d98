from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.support.factories import make_org
from tidings.contacts import service
from tidings.db.engine import Database
from tidings.errors import NotFound
from tidings.lists import service as lists
from tidings.lists.models import ListMember
from tidings.privacy import service as privacy


async def test_erase_empties_personal_data_and_keeps_the_row(db: Database) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        panel = await lists.create_list(session, org_id=org.id, name="panel", description=None)
    async with db.transaction() as session:
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

    async with db.transaction() as session:
        erased = await privacy.erase_contact(
            session, org_id=org.id, contact_id=contact_id, erasure_key=b"k"
        )
    async with db.transaction() as session:
        again = await privacy.erase_contact(
            session, org_id=org.id, contact_id=contact_id, erasure_key=b"k"
        )
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
    async with db.transaction() as session:
        fresh = await service.upsert_contacts(
            session, org_id=org.id, rows=[{"email": "ada@example.com"}]
        )
    assert fresh.created == 1
    assert fresh.outcomes[0].contact_id != contact_id


async def test_erasing_another_orgs_contact_is_not_found(db: Database) -> None:
    a = await make_org(db, "A")
    b = await make_org(db, "B")
    async with db.transaction() as session:
        report = await service.upsert_contacts(
            session, org_id=a.id, rows=[{"email": "x@example.com"}]
        )
    contact_id = report.outcomes[0].contact_id
    assert contact_id is not None
    async with db.transaction() as session:
        with pytest.raises(NotFound):
            await privacy.erase_contact(
                session, org_id=b.id, contact_id=contact_id, erasure_key=b"k"
            )
    async with db.session() as session:
        still = await service.get_contact(session, org_id=a.id, contact_id=contact_id)
    assert still.email == "x@example.com"


async def test_erase_keeps_only_non_personal_message_history(db: Database) -> None:
    from tests.support.sending import audience, broadcast_now, email_campaign
    from tidings.channels.models import SinkMessage
    from tidings.content.render import Renderer
    from tidings.dispatcher.loop import Dispatcher
    from tidings.outbox.models import Message

    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    target = await audience(
        db, org, [{"email": "ada@example.com", "first_name": "Ada"}, {"email": "bo@example.com"}]
    )
    await broadcast_now(db, org, campaign_id, target.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    ada = target.contact_ids[0]

    async with db.transaction() as session:
        await privacy.erase_contact(session, org_id=org.id, contact_id=ada, erasure_key=b"k")
    async with db.session() as session:
        messages = {m.contact_id: m for m in await session.scalars(select(Message))}
        sunk = {s.message_id: s for s in await session.scalars(select(SinkMessage))}

    erased = messages[ada]
    assert (erased.recipient, erased.variables) == (None, None)
    assert (erased.status, erased.sent_at is not None) == ("sent", True)  # history stays
    erased_sink = sunk[erased.id]
    assert (erased_sink.recipient, erased_sink.subject, erased_sink.content) == (None, None, None)
    other = messages[target.contact_ids[1]]
    assert other.recipient == "bo@example.com"  # nobody else's history is touched
    assert sunk[other.id].content is not None
