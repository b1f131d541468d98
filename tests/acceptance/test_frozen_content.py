"""Content is frozen when a send is accepted: editing the template or the campaign while a
broadcast (or a single send) is under way never changes what it sends; the next send
gets the new content."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import httpx
from sqlalchemy import select

from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.channels.models import SinkMessage
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.outbox.models import Message

PEOPLE = 40


async def _post(client: httpx.AsyncClient, path: str, org: OrgWithKey, body: Any) -> Any:
    response = await client.post(f"/v1/orgs/{org.id}{path}", json=body, headers=org.bearer)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _sent(db: Database, *, broadcast_id: int | None = None) -> list[tuple[str, str]]:
    """(Subject, From address) of each message the sink received (of one broadcast)."""
    query = select(SinkMessage.content).join(Message, Message.id == SinkMessage.message_id)
    if broadcast_id is not None:
        query = query.where(Message.broadcast_id == broadcast_id)
    async with db.session() as session:
        contents = list(await session.scalars(query))
    parsed = [email.message_from_string(c or "", policy=policy.default) for c in contents]
    return [(str(p["Subject"]), p["From"].addresses[0].addr_spec) for p in parsed]


async def test_a_template_and_campaign_edited_mid_send_leave_the_send_as_accepted(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await upsert(client, org, [{"email": f"p{i}@example.com"} for i in range(PEOPLE)])
    template = await _post(
        client,
        "/templates",
        org,
        {"name": "t", "channel": "email", "subject": "Old subject", "text": "old"},
    )
    campaign = await _post(
        client,
        "/campaigns",
        org,
        {"name": "c", "channel": "email", "template_id": template["id"],
         "from_email": "old@acme.example"},
    )  # fmt: skip
    first = await _post(
        client,
        "/broadcasts",
        org,
        {"name": "b1", "campaign_id": campaign["id"], "send_to_all": True},
    )
    contact = (await client.get(f"/v1/orgs/{org.id}/contacts?limit=1", headers=org.bearer)).json()
    single = await _post(
        client,
        "/messages",
        org,
        {"campaign_id": campaign["id"], "contact_id": contact["data"][0]["id"]},
    )

    dispatcher = Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=10))
    await dispatcher.tick()  # started, and one batch of 10 sent
    assert 0 < len(await _sent(db)) < PEOPLE

    h = org.bearer
    edited = await client.patch(
        f"/v1/orgs/{org.id}/templates/{template['id']}", json={"subject": "New subject"}, headers=h
    )
    assert edited.json()["version"] == 2
    moved = await client.patch(
        f"/v1/orgs/{org.id}/campaigns/{campaign['id']}",
        json={"from_email": "new@acme.example"},
        headers=h,
    )
    assert moved.status_code == 200, moved.text
    await dispatcher.drain()

    old = ("Old subject", "old@acme.example")
    assert await _sent(db, broadcast_id=first["id"]) == [old] * PEOPLE
    async with db.session() as session:
        sink = await session.scalar(
            select(SinkMessage.content).where(SinkMessage.message_id == single["id"])
        )
    single_sent = email.message_from_string(sink or "", policy=policy.default)
    assert (single_sent["Subject"], single_sent["From"].addresses[0].addr_spec) == old

    second = await _post(
        client,
        "/broadcasts",
        org,
        {"name": "b2", "campaign_id": campaign["id"], "send_to_all": True},
    )
    await dispatcher.drain()
    assert (
        await _sent(db, broadcast_id=second["id"]) == [("New subject", "new@acme.example")] * PEOPLE
    )
    await dispatcher.close()


async def test_a_scheduled_broadcast_keeps_what_it_was_accepted_with(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Frozen when the API accepts it, not when it starts (docs/sending.md)."""
    org = await make_org(db)
    await upsert(client, org, [{"email": "p@example.com"}])
    template = await _post(
        client,
        "/templates",
        org,
        {"name": "t", "channel": "email", "subject": "Before", "text": "x"},
    )
    campaign = await _post(
        client,
        "/campaigns",
        org,
        {"name": "c", "channel": "email", "template_id": template["id"],
         "from_email": "a@acme.example"},
    )  # fmt: skip
    draft = await _post(
        client,
        "/broadcasts",
        org,
        {"name": "d", "campaign_id": campaign["id"], "send_to_all": True, "draft": True},
    )
    h = org.bearer
    await client.patch(
        f"/v1/orgs/{org.id}/templates/{template['id']}", json={"subject": "At send"}, headers=h
    )
    sent = await client.post(f"/v1/orgs/{org.id}/broadcasts/{draft['id']}/send", headers=h)
    assert sent.status_code == 200, sent.text  # a draft is accepted when it is sent
    await client.patch(
        f"/v1/orgs/{org.id}/templates/{template['id']}", json={"subject": "After"}, headers=h
    )
    dispatcher = Dispatcher(db, renderer=Renderer())
    await dispatcher.drain()
    await dispatcher.close()
    assert await _sent(db, broadcast_id=draft["id"]) == [("At send", "a@acme.example")]
