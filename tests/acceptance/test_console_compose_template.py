"""Compose from a template instead of a campaign: the broadcast goes out under the
template's hidden campaign (the single sends' path), with the form's sender, through the
org's default connection; without one, the form says so. The estimate leaves nothing
behind, and the test send goes through the same hidden campaign."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from tests.support.console import signed_in
from tests.support.factories import make_org
from tests.support.sending import audience
from tidings.broadcasts.models import Broadcast
from tidings.campaigns.models import Campaign
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.outbox.models import Message

HX = {"HX-Request": "true"}


async def _hidden_campaigns(db: Database) -> int:
    async with db.transaction(write=False) as session:
        query = select(func.count()).select_from(Campaign).where(Campaign.is_single_send)
        return int(await session.scalar(query) or 0)


async def test_compose_a_broadcast_from_a_template(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    made = await client.post(
        f"/v1/orgs/{me.org.id}/templates",
        json={"name": "Welcome", "channel": "email", "subject": "Hi", "text": "Hello"},
        headers=me.org.bearer,
    )
    template_id = made.json()["id"]
    people = await audience(db, me.org, [{"email": "a@example.com"}, {"email": "b@example.com"}])
    form = {"name": "From a template", "template_id": str(template_id), "purpose": "marketing",
            "from_email": "news@acme.example", "list_ids": str(people.list_id),
            "when": "now", "csrf_token": me.csrf}  # fmt: skip

    page = await client.get("/compose")
    assert f'<option value="{template_id}">Welcome (email)</option>' in page.text
    assert "email: <em>none</em>" in page.text  # what a template would be sent through
    no_default = await client.post("/compose", data=form)
    assert no_default.status_code == 422
    assert "no default email connection" in no_default.text
    estimate = await client.post("/compose/estimate", data=form, headers=HX)
    assert "no default email connection" in estimate.text

    sink = await client.post(
        f"/v1/orgs/{me.org.id}/connections",
        json={"name": "the sink", "channel": "email", "kind": "sink", "is_default": True},
        headers=me.org.bearer,
    )
    assert sink.status_code == 201, sink.text
    assert "email: <strong>the sink</strong>" in (await client.get("/compose")).text
    no_sender = await client.post("/compose/estimate", data={**form, "from_email": ""}, headers=HX)
    assert "<code>from_email</code>" in no_sender.text
    both = await client.post("/compose/estimate", data={**form, "campaign_id": "1"}, headers=HX)
    assert "not both" in both.text
    estimate = await client.post("/compose/estimate", data=form, headers=HX)
    assert 'data-recipients="2"' in estimate.text
    assert await _hidden_campaigns(db) == 0  # the estimate kept nothing

    tested = await client.post("/compose/test", data={**form, "test_addresses": "t@example.com"})
    assert tested.status_code == 303, tested.text
    assert tested.headers["location"] == f"/compose?template_id={template_id}"
    created = await client.post("/compose", data=form)
    assert created.status_code == 303, created.text
    broadcast_id = int(created.headers["location"].rsplit("/", 1)[1])
    async with db.transaction(write=False) as session:
        broadcast = await session.get_one(Broadcast, broadcast_id)
        campaign = await session.get_one(Campaign, broadcast.campaign_id)
        test_message = await session.scalar(select(Message).where(Message.broadcast_id.is_(None)))
    assert campaign.is_single_send  # hidden: Tidings' own, not listed
    assert (campaign.template_id, campaign.from_email, campaign.purpose) == (
        template_id, "news@acme.example", "marketing")  # fmt: skip
    assert campaign.connection_id is None  # the org's default, whichever it is when sent
    assert test_message is not None
    assert test_message.campaign_id == campaign.id  # the test went the same way
    assert await _hidden_campaigns(db) == 1
    listed = await client.get("/campaigns")
    assert f'href="/campaigns/{campaign.id}"' not in listed.text
    report = await client.get(f"/broadcasts/{broadcast_id}")
    assert report.status_code == 200
    assert "From a template" in report.text


async def test_a_viewer_cannot_and_another_org_s_template_is_a_field_error(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = await make_org(db, "Other")
    theirs = await client.post(
        f"/v1/orgs/{other.id}/templates",
        json={"name": "Theirs", "channel": "email", "subject": "Hi", "text": "Hello"},
        headers=other.bearer,
    )
    me = await signed_in(client, db, role=Role.EDITOR)
    await client.post(
        f"/v1/orgs/{me.org.id}/connections",
        json={"name": "sink", "channel": "email", "kind": "sink", "is_default": True},
        headers=me.org.bearer,
    )
    form = {"name": "x", "template_id": str(theirs.json()["id"]), "send_to_all": "true",
            "from_email": "a@acme.example", "csrf_token": me.csrf}  # fmt: skip
    refused = await client.post("/compose", data=form)
    assert refused.status_code == 422
    assert "<code>template_id</code>" in refused.text
    assert "Theirs" not in refused.text
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=me.org)
    denied = await client.post("/compose", data={**form, "csrf_token": viewer.csrf})
    assert denied.status_code == 403
