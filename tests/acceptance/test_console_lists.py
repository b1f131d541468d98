"""The console's lists: create (the API's messages beside the field), members counted,
add by address and remove (audited as the member), roles, another org's list 404."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import contact, make_org, upsert
from tidings.audit.models import AuditEntry
from tidings.db.engine import Database
from tidings.lists.models import ContactList
from tidings.members.roles import Role


async def test_create_a_list_add_and_remove_a_member(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    ada = (await upsert(client, me.org, [contact(1)]))["results"][0]["id"]
    created = await client.post("/lists", data={"name": "Newsletter", "csrf_token": me.csrf})
    assert created.status_code == 303
    where = created.headers["location"]
    added = await client.post(
        f"{where}/members", data={"address": "person1@example.com", "csrf_token": me.csrf}
    )
    assert added.status_code == 303
    page = await client.get(where)
    assert 'data-members="1"' in page.text
    assert "person1@example.com" in page.text
    index = await client.get("/lists")
    assert "Newsletter" in index.text
    unknown = await client.post(
        f"{where}/members", data={"address": "nobody@example.com", "csrf_token": me.csrf}
    )
    assert unknown.status_code == 422
    assert "no contact has this address" in unknown.text
    removed = await client.post(f"{where}/members/{ada}/remove", data={"csrf_token": me.csrf})
    assert removed.status_code == 303
    assert 'data-members="0"' in (await client.get(where)).text
    nameless = await client.post("/lists", data={"name": " ", "csrf_token": me.csrf})
    assert nameless.status_code == 422
    assert "String should have at least 1 character" in nameless.text
    async with db.transaction(write=False) as session:
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.actor == f"member {me.member.id}")
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["list.create", "list.members_add", "list.members_remove"]
    deleted = await client.post(f"{where}/delete", data={"csrf_token": me.csrf})
    assert deleted.status_code == 303
    assert (await client.get(where)).status_code == 404
    assert "person1@example.com" in (await client.get(f"/contacts/{ada}")).text  # stays


async def test_a_viewer_reads_lists_and_another_org_s_list_is_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    created = await client.post("/lists", data={"name": "Panel", "csrf_token": owner.csrf})
    where = created.headers["location"]
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=owner.org)
    assert (await client.get(where)).status_code == 200
    refused = await client.post("/lists", data={"name": "Mine", "csrf_token": viewer.csrf})
    assert refused.status_code == 403
    client.cookies.clear()
    stranger = await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(where)).status_code == 404
    await upsert(client, await make_org(db, "Third"), [contact(9)])
    answer = await client.post(
        f"{where}/members", data={"address": "person9@example.com", "csrf_token": stranger.csrf}
    )
    assert answer.status_code == 404
    gone = await client.post(f"{where}/delete", data={"csrf_token": stranger.csrf})
    assert gone.status_code == 404
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(ContactList.name)) == "Panel"
