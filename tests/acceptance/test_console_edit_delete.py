"""Changing and deleting campaigns, connections and segments in the console: the same
services as the API's PATCH and DELETE, audited as the member; a refusal (422, 409) shown
on the form, never a 500; a connection's credentials never shown, kept when left blank;
roles; another org's object 404."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.audit.models import AuditEntry
from tidings.campaigns.models import Campaign
from tidings.connections.models import Connection
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.segments.models import Segment

SECRET = "pa55-never-shown"


async def _actions(db: Database, action: str) -> list[str]:
    async with db.transaction(write=False) as session:
        query = select(AuditEntry.actor).where(AuditEntry.action == action)
        return list(await session.scalars(query))


async def test_edit_a_campaign_and_see_the_refusals_beside_the_fields(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    campaign_id = await email_campaign(db, me.org, name="Spring")
    form = await client.get(f"/campaigns/{campaign_id}/edit")
    assert form.status_code == 200
    assert 'value="research@acme.example"' in form.text  # filled in
    async with db.transaction(write=False) as session:
        template_id = (await session.get_one(Campaign, campaign_id)).template_id
    fields = {"name": "Summer", "template_id": str(template_id), "purpose": "marketing",
              "from_email": "summer@acme.example", "from_name": "", "track_opens": "on",
              "quiet_start": "21:00", "quiet_end": "08:00", "csrf_token": me.csrf}  # fmt: skip
    bad = await client.post(f"/campaigns/{campaign_id}/edit",
                            data={**fields, "from_email": "not an address"})  # fmt: skip
    assert bad.status_code == 422
    assert 'value="not an address"' in bad.text
    assert "field-error" in bad.text
    no_sender = await client.post(f"/campaigns/{campaign_id}/edit",
                                  data={**fields, "from_email": ""})  # fmt: skip
    assert no_sender.status_code == 422
    assert "needs a sender address" in no_sender.text
    saved = await client.post(f"/campaigns/{campaign_id}/edit", data=fields)
    assert saved.status_code == 303, saved.text
    async with db.transaction(write=False) as session:
        stored = await session.get_one(Campaign, campaign_id)
    assert (stored.name, stored.from_email, stored.purpose) == (
        "Summer", "summer@acme.example", "marketing")  # fmt: skip
    assert stored.from_name is None  # emptied: cleared, as null in the PATCH
    assert stored.quiet_hours == {"start": "21:00", "end": "08:00"}
    assert await _actions(db, "campaign.update") == [f"member {me.member.id}"]


async def test_delete_a_campaign_refused_while_a_broadcast_sends_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    busy = await email_campaign(db, me.org, name="busy")
    idle = await email_campaign(db, me.org, name="idle")
    people = await audience(db, me.org, [{"email": "a@example.com"}])
    await broadcast_now(db, me.org, busy, people.list_id)
    confirm = await client.get(f"/campaigns/{idle}/delete")
    assert confirm.status_code == 200
    assert f'action="/campaigns/{idle}/delete"' in confirm.text
    refused = await client.post(f"/campaigns/{busy}/delete", data={"csrf_token": me.csrf})
    assert refused.status_code == 409
    assert "Refused:" in refused.text
    assert "broadcast" in refused.text
    deleted = await client.post(f"/campaigns/{idle}/delete", data={"csrf_token": me.csrf})
    assert deleted.status_code == 303
    async with db.transaction(write=False) as session:
        gone = await session.get_one(Campaign, idle)
        kept = await session.get_one(Campaign, busy)
    assert gone.deleted_at is not None
    assert kept.deleted_at is None
    assert (await client.get(f"/campaigns/{idle}")).status_code == 404
    assert await _actions(db, "campaign.delete") == [f"member {me.member.id}"]


async def _smtp(client: httpx.AsyncClient, org: OrgWithKey, *, default: bool = False) -> int:
    answer = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": "relay", "channel": "email", "kind": "smtp", "is_default": default,
              "settings": {"host": "127.0.0.1", "port": 2525},
              "credentials": {"username": "u", "password": SECRET}},
        headers=org.bearer,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    ident: int = answer.json()["id"]
    return ident


async def test_edit_a_connection_never_showing_its_credentials(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    connection_id = await _smtp(client, me.org)
    form = await client.get(f"/connections/{connection_id}/edit")
    assert form.status_code == 200
    assert SECRET not in form.text
    assert "2525" in form.text  # the settings are filled in
    fields = {"name": "relay-2", "settings_json": '{"host": "127.0.0.1", "port": 2526}',
              "credentials_json": "", "max_concurrency": "3", "csrf_token": me.csrf}  # fmt: skip
    bad = await client.post(
        f"/connections/{connection_id}/edit",
        data={**fields, "settings_json": '{"host": "127.0.0.1", "port": "x"}',
              "credentials_json": '{"username": "u", "password": "typed-again"}'},
    )  # fmt: skip
    assert bad.status_code == 422
    assert "<code>settings.port</code>" in bad.text
    assert "typed-again" not in bad.text
    kept = await client.post(f"/connections/{connection_id}/edit", data=fields)
    assert kept.status_code == 303, kept.text
    async with db.transaction(write=False) as session:
        stored = await session.get_one(Connection, connection_id)
    assert (stored.name, stored.settings["port"], stored.max_concurrency) == ("relay-2", 2526, 3)
    assert stored.credentials == {"username": "u", "password": SECRET}  # blank: kept
    replaced = await client.post(
        f"/connections/{connection_id}/edit",
        data={**fields, "credentials_json": '{"username": "v", "password": "new-one"}'},
    )
    assert replaced.status_code == 303
    async with db.transaction(write=False) as session:
        stored = await session.get_one(Connection, connection_id)
    assert stored.credentials == {"username": "v", "password": "new-one"}
    async with db.transaction(write=False) as session:
        entries = list(await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "connection.update")))  # fmt: skip
    assert [e.actor for e in entries] == [f"member {me.member.id}"] * 2
    assert SECRET not in str([e.changes for e in entries])


async def test_delete_a_connection_refused_while_a_campaign_names_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    connection_id = await _smtp(client, me.org)
    campaign_id = await email_campaign(db, me.org, name="uses-it")
    named = await client.patch(
        f"/v1/orgs/{me.org.id}/campaigns/{campaign_id}",
        json={"connection_id": connection_id},
        headers=me.org.bearer,
    )
    assert named.status_code == 200, named.text
    confirm = await client.get(f"/connections/{connection_id}/delete")
    assert f'action="/connections/{connection_id}/delete"' in confirm.text
    refused = await client.post(f"/connections/{connection_id}/delete",
                                data={"csrf_token": me.csrf})  # fmt: skip
    assert refused.status_code == 409
    assert "Refused:" in refused.text
    assert f"campaign {campaign_id}" in refused.text or "uses-it" in refused.text
    await client.post(f"/campaigns/{campaign_id}/delete", data={"csrf_token": me.csrf})
    deleted = await client.post(f"/connections/{connection_id}/delete",
                                data={"csrf_token": me.csrf})  # fmt: skip
    assert deleted.status_code == 303, deleted.text
    after = await client.get("/connections")
    assert "Connection &#39;relay&#39; deleted" in after.text
    assert "<td>relay" not in after.text
    assert await _actions(db, "connection.delete") == [f"member {me.member.id}"]


async def test_edit_a_segment_s_filter_and_delete_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    made = await client.post(
        f"/v1/orgs/{me.org.id}/segments",
        json={"name": "pros", "filter": {"field": "attributes.plan", "op": "eq", "value": "pro"}},
        headers=me.org.bearer,
    )
    segment_id = made.json()["id"]
    form = await client.get(f"/segments/{segment_id}/edit")
    assert form.status_code == 200
    assert "attributes.plan" in form.text
    fields = {"name": "big pros", "description": "",
              "filter_json": '{"and": [{"field": "attributes.plan", "op": "eq", "value": "pro"},'
                             ' {"field": "attributes.seats", "op": "gte", "value": 10}]}',
              "csrf_token": me.csrf}  # fmt: skip
    not_json = await client.post(f"/segments/{segment_id}/edit",
                                 data={**fields, "filter_json": "{oops"})  # fmt: skip
    assert not_json.status_code == 422
    assert "not JSON" in not_json.text
    wrong_op = await client.post(
        f"/segments/{segment_id}/edit",
        data={**fields, "filter_json": '{"field": "email", "op": "near", "value": 1}'},
    )
    assert wrong_op.status_code == 422
    assert "<code>filter" in wrong_op.text
    saved = await client.post(f"/segments/{segment_id}/edit", data=fields)
    assert saved.status_code == 303, saved.text
    async with db.transaction(write=False) as session:
        stored = await session.get_one(Segment, segment_id)
    assert stored.name == "big pros"
    assert "and" in stored.filter
    assert await _actions(db, "segment.update") == [f"member {me.member.id}"]
    confirm = await client.get(f"/segments/{segment_id}/delete")
    assert f'action="/segments/{segment_id}/delete"' in confirm.text
    deleted = await client.post(f"/segments/{segment_id}/delete", data={"csrf_token": me.csrf})
    assert deleted.status_code == 303
    assert (await client.get(f"/segments/{segment_id}")).status_code == 404


async def test_an_editor_cannot_and_another_org_s_objects_are_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = await make_org(db, "Other")
    theirs = await email_campaign(db, other, name="theirs")
    theirs_connection = await _smtp(client, other)
    me = await signed_in(client, db, role=Role.OWNER)
    for path in (f"/campaigns/{theirs}/edit", f"/campaigns/{theirs}/delete",
                 f"/connections/{theirs_connection}/edit",
                 f"/connections/{theirs_connection}/delete"):  # fmt: skip
        assert (await client.get(path)).status_code == 404, path
        assert (await client.post(path, data={"csrf_token": me.csrf})).status_code == 404, path
    mine = await email_campaign(db, me.org, name="mine")
    no_token = await client.post(f"/campaigns/{mine}/delete")
    assert no_token.status_code == 403
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=me.org)
    assert (await client.get(f"/campaigns/{mine}/edit")).status_code == 403
    denied = await client.post(f"/campaigns/{mine}/delete", data={"csrf_token": editor.csrf})
    assert denied.status_code == 403
    async with db.transaction(write=False) as session:
        assert (await session.get_one(Campaign, mine)).deleted_at is None
