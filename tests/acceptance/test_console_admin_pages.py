"""The console's suppressions, API keys and audit log: what each role may do, the API's
messages beside the fields, writes audited as the member, another org's rows 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import make_org
from tidings.audit.models import AuditEntry
from tidings.db.engine import Database
from tidings.keys.models import ApiKey
from tidings.members.roles import Role
from tidings.suppressions.models import Suppression


async def _entries(db: Database, action: str) -> list[AuditEntry]:
    async with db.transaction(write=False) as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def test_suppressions_add_list_and_remove(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    added = await client.post(
        "/suppressions",
        data={"channel": "email", "address": " Gone@Example.com ", "csrf_token": me.csrf},
    )
    assert added.status_code == 303
    page = await client.get("/suppressions")
    assert "<td>gone@example.com</td>" in page.text  # normalised as the API does
    bad = await client.post(
        "/suppressions", data={"channel": "sms", "address": "not a number", "csrf_token": me.csrf}
    )
    assert bad.status_code == 422
    assert 'value="not a number"' in bad.text
    assert "field-error" in bad.text
    filtered = await client.get("/suppressions", params={"channel": "sms"})
    assert "gone@example.com" not in filtered.text
    async with db.transaction(write=False) as session:
        row = await session.scalar(select(Suppression))
    assert row is not None
    assert row.source == "console"
    removed = await client.post(f"/suppressions/{row.id}/remove", data={"csrf_token": me.csrf})
    assert removed.status_code == 303
    assert "gone@example.com" not in (await client.get("/suppressions")).text
    added_log, removed_log = (
        await _entries(db, "suppression.add"),
        await _entries(db, "suppression.remove"),
    )
    assert [e.actor for e in added_log] == [f"member {me.member.id}"]
    assert [e.changes for e in added_log] == [{"created": 1, "existing": 0, "failed": 0}]
    assert [e.target_id for e in removed_log] == [row.id]


async def test_an_editor_reads_suppressions_but_changes_none(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    await client.post("/suppressions", data={"channel": "email", "address": "a@example.com",
                                             "csrf_token": owner.csrf})  # fmt: skip
    async with db.transaction(write=False) as session:
        row_id = await session.scalar(select(Suppression.id))
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=owner.org)
    page = await client.get("/suppressions")
    assert "a@example.com" in page.text
    assert ">Remove</button>" not in page.text
    refused = await client.post(f"/suppressions/{row_id}/remove", data={"csrf_token": editor.csrf})
    assert refused.status_code == 403
    client.cookies.clear()
    stranger = await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert "a@example.com" not in (await client.get("/suppressions")).text
    gone = await client.post(f"/suppressions/{row_id}/remove", data={"csrf_token": stranger.csrf})
    assert gone.status_code == 404


async def test_a_key_s_secret_is_shown_once_and_it_can_be_revoked(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    issued = await client.post(
        "/keys", data={"name": "CRM", "kind": "live", "scope": ["read", "send"],
                       "csrf_token": me.csrf},
    )  # fmt: skip
    assert issued.status_code == 201
    secret = re.search(r"<code class=\"secret\" data-secret>([^<]+)</code>", issued.text)
    assert secret is not None
    works = await client.get(
        f"/v1/orgs/{me.org.id}/contacts", headers={"Authorization": f"Bearer {secret.group(1)}"}
    )
    assert works.status_code == 200
    listed = await client.get("/keys")
    assert secret.group(1) not in listed.text
    async with db.transaction(write=False) as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.name == "CRM"))
    assert key is not None
    assert key.scopes.split() == ["read", "send"]
    created_log = await _entries(db, "key.create")
    assert [e.actor for e in created_log] == [f"member {me.member.id}"]
    assert secret.group(1) not in str(created_log[0].changes)

    revoked = await client.post(f"/keys/{key.id}/revoke", data={"csrf_token": me.csrf})
    assert revoked.status_code == 303
    refused = await client.get(
        f"/v1/orgs/{me.org.id}/contacts", headers={"Authorization": f"Bearer {secret.group(1)}"}
    )
    assert refused.status_code == 401
    nameless = await client.post("/keys", data={"name": "", "scope": ["read"],
                                                "csrf_token": me.csrf})  # fmt: skip
    assert nameless.status_code == 422
    assert "String should have at least 1 character" in nameless.text
    scopeless = await client.post("/keys", data={"name": "x", "csrf_token": me.csrf})
    assert scopeless.status_code == 422
    assert "List should have at least 1 item" in scopeless.text


async def test_keys_need_a_manager_and_stay_in_their_org(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    async with db.transaction(write=False) as session:
        first_key = await session.scalar(select(ApiKey.id).where(ApiKey.org_id == owner.org.id))
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=owner.org)
    assert (await client.get("/keys")).status_code == 403
    denied = await client.post("/keys", data={"name": "x", "scope": ["read"],
                                              "csrf_token": editor.csrf})  # fmt: skip
    assert denied.status_code == 403
    client.cookies.clear()
    stranger = await signed_in(client, db, role=Role.ADMIN, org=await make_org(db, "Other"))
    answer = await client.post(f"/keys/{first_key}/revoke", data={"csrf_token": stranger.csrf})
    assert answer.status_code == 404
    async with db.transaction(write=False) as session:
        key = await session.get(ApiKey, first_key)
    assert key is not None
    assert key.revoked_at is None


async def test_the_audit_log_filters_and_needs_a_manager(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    await client.post("/suppressions", data={"channel": "email", "address": "a@example.com",
                                             "csrf_token": me.csrf})  # fmt: skip
    await client.post("/keys", data={"name": "CRM", "scope": ["read"], "csrf_token": me.csrf})
    everything = await client.get("/audit")
    assert everything.status_code == 200
    assert "<td>suppression.add</td>" in everything.text
    assert "<td>key.create</td>" in everything.text
    only_keys = await client.get("/audit", params={"action": "key.create"})
    assert "<td>key.create</td>" in only_keys.text
    assert "<td>suppression.add</td>" not in only_keys.text
    future = await client.get("/audit", params={"since": "2999-01-01T00:00"})
    assert "No entries match." in future.text
    bad = await client.get("/audit", params={"since": "yesterday"})
    assert bad.status_code == 422
    assert "ISO 8601" in bad.text
    unknown = await client.get("/audit", params={"action": "nothing.done"})
    assert unknown.status_code == 422
    client.cookies.clear()
    await signed_in(client, db, role=Role.VIEWER, org=me.org)
    assert (await client.get("/audit")).status_code == 403
    client.cookies.clear()
    await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert "<td>suppression.add</td>" not in (await client.get("/audit")).text
