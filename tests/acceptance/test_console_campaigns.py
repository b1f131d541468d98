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
