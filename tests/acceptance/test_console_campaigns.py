"""The console's campaigns: the list, a campaign's page, a new campaign checked as the
API checks it and audited as the member; roles; another org's campaign 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import OrgWithKey, make_org
from tidings.audit.models import AuditEntry
from tidings.campaigns.models import Campaign
from tidings.db.engine import Database
from tidings.members.roles import Role


async def _template(client: httpx.AsyncClient, org: OrgWithKey) -> int:
    answer = await client.post(
        f"/v1/orgs/{org.id}/templates",
        json={"name": "T", "channel": "email", "subject": "Hi", "text": "Hello"},
        headers=org.bearer,
    )
    assert answer.status_code == 201, answer.text
    ident: int = answer.json()["id"]
    return ident


async def test_create_a_campaign_and_read_it(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    template_id = await _template(client, me.org)
    form = await client.get("/campaigns/new")
    assert form.status_code == 200
    assert f'<option value="{template_id}"' in form.text
    created = await client.post(
        "/campaigns",
        data={"name": "Spring", "channel": "email", "template_id": str(template_id),
              "purpose": "marketing", "from_email": "news@example.com", "track_clicks": "on",
              "csrf_token": me.csrf},
    )  # fmt: skip
    assert created.status_code == 303, created.text
    page = await client.get(created.headers["location"])
    assert "Campaign: Spring" in page.text
    assert "clicks on" in page.text
    assert "Spring" in (await client.get("/campaigns")).text
    bad = await client.post(
        "/campaigns",
        data={"name": "X", "channel": "email", "template_id": str(template_id),
              "from_email": "not an address", "csrf_token": me.csrf},
    )  # fmt: skip
    assert bad.status_code == 422
    assert 'value="not an address"' in bad.text
    assert "field-error" in bad.text
    async with db.transaction(write=False) as session:
        stored = await session.scalar(select(Campaign))
        actors = list(await session.scalars(
            select(AuditEntry.actor).where(AuditEntry.action == "campaign.create")))  # fmt: skip
    assert stored is not None
    assert stored.track_clicks is True
    assert stored.purpose == "marketing"
    assert actors == [f"member {me.member.id}"]


async def test_an_editor_reads_and_another_org_gets_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    template_id = await _template(client, me.org)
    created = await client.post(
        "/campaigns", data={"name": "Spring", "channel": "email", "purpose": "transactional",
                            "template_id": str(template_id), "from_email": "a@example.com",
                            "csrf_token": me.csrf},
    )  # fmt: skip
    assert created.status_code == 303, re.findall(r'field-error">[^<]*<', created.text)
    where = created.headers["location"]
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=me.org)
    assert (await client.get(where)).status_code == 200
    assert (await client.get("/campaigns/new")).status_code == 403
    denied = await client.post("/campaigns", data={"name": "Y", "csrf_token": editor.csrf})
    assert denied.status_code == 403
    client.cookies.clear()
    await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(where)).status_code == 404
    assert "Spring" not in (await client.get("/campaigns")).text


async def _connection(client: httpx.AsyncClient, org: OrgWithKey, name: str, channel: str) -> int:
    answer = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": name, "channel": channel, "kind": "sink"},
        headers=org.bearer,
    )
    assert answer.status_code == 201, answer.text
    ident: int = answer.json()["id"]
    return ident


async def test_a_campaign_s_failover_list_fallback_and_quiet_hours(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    template_id = await _template(client, me.org)
    first = await _connection(client, me.org, "Primary", "email")
    second = await _connection(client, me.org, "Backup", "email")
    sms_template = await client.post(
        f"/v1/orgs/{me.org.id}/templates",
        json={"name": "S", "channel": "sms", "text": "Hello"},
        headers=me.org.bearer,
    )
    sms = await client.post(
        f"/v1/orgs/{me.org.id}/campaigns",
        json={"name": "By SMS", "channel": "sms", "template_id": sms_template.json()["id"]},
        headers=me.org.bearer,
    )
    assert sms.status_code == 201, sms.text
    base = {"name": "Spring", "channel": "email", "template_id": str(template_id),
            "purpose": "marketing", "from_email": "news@example.com",
            "csrf_token": me.csrf}  # fmt: skip
    form = await client.get("/campaigns/new")
    assert form.text.count('name="connection_ids"') == 5
    created = await client.post(
        "/campaigns",
        data={**base, "connection_ids": [str(second), "", str(first)],
              "fallback_campaign_id": str(sms.json()["id"]),
              "quiet_start": "20:00", "quiet_end": "09:00"},
    )  # fmt: skip
    assert created.status_code == 303, re.findall(r'field-error">[^<]*<', created.text)
    ident = int(created.headers["location"].rsplit("/", 1)[1])
    api = (await client.get(f"/v1/orgs/{me.org.id}/campaigns/{ident}",
                            headers=me.org.bearer)).json()  # fmt: skip
    assert api["connection_ids"] == [second, first]
    assert api["fallback_campaign_id"] == sms.json()["id"]
    assert api["quiet_hours"] == {"start": "20:00", "end": "09:00"}
    page = (await client.get(f"/campaigns/{ident}")).text
    assert f"Backup</a> ({second}) → <a" in page
    assert "By SMS</a>" in page
    assert "20:00–09:00 local (its own)" in page
    assert "Backup → Primary" in (await client.get("/campaigns")).text
    twice = await client.post(
        "/campaigns", data={**base, "connection_ids": [str(first), str(first)]}
    )
    assert twice.status_code == 422
    assert "connection_ids[1]</code>: listed twice" in twice.text
    bad = await client.post("/campaigns", data={**base, "quiet_start": "7pm"})
    assert bad.status_code == 422
    assert "quiet_hours.start" in bad.text
    assert 'value="7pm"' in bad.text
    async with db.transaction(write=False) as session:
        audited = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "campaign.create"))  # fmt: skip
    assert audited is not None
    assert audited.changes is not None
    assert "connection_ids" in str(audited.changes)
    client.cookies.clear()
    await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(f"/campaigns/{ident}")).status_code == 404
    assert "Backup" not in (await client.get("/campaigns/new")).text
