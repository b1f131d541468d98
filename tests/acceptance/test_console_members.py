"""The console's members page: list, add (a one-time password shown once), change a role,
remove; who may do what (admins never touch owners; the last owner stays); audited as the
member; editors and viewers refused; another org's member 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import add_member, sign_in, signed_in
from tests.support.factories import make_org
from tidings.audit.models import AuditEntry
from tidings.db.engine import Database
from tidings.members.models import Member
from tidings.members.roles import Role

_SECRET = re.compile(r"<code class=\"secret\" data-secret>([A-Za-z0-9]+)</code>")


async def _entries(db: Database, action: str) -> list[AuditEntry]:
    async with db.transaction(write=False) as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def _role_of(db: Database, member_id: int) -> str | None:
    async with db.transaction(write=False) as session:
        member = await session.get(Member, member_id)
        return None if member is None else member.role


async def test_an_owner_adds_a_member_who_signs_in_with_the_password_shown_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    page = await client.get("/members")
    assert page.status_code == 200
    assert me.member.email in page.text
    assert "never" not in page.text  # the owner has signed in: a time, not "never"
    added = await client.post(
        "/members", data={"email": "Ada@Example.com", "role": "editor", "csrf_token": me.csrf}
    )
    assert added.status_code == 201, added.text
    found = _SECRET.search(added.text)
    assert found, added.text
    password = found.group(1)
    assert "ada@example.com" in added.text
    again = await client.get("/members")
    assert password not in again.text  # shown once
    assert "never" in again.text  # ada has not signed in yet
    taken = await client.post(
        "/members", data={"email": "ada@example.com", "role": "viewer", "csrf_token": me.csrf}
    )
    assert taken.status_code == 409
    assert "already exists" in taken.text
    bad = await client.post(
        "/members", data={"email": "not-an-email", "role": "viewer", "csrf_token": me.csrf}
    )
    assert bad.status_code == 422
    assert "not an email address" in bad.text
    [entry] = await _entries(db, "member.create")
    assert entry.actor == f"member {me.member.id}"
    assert password not in str(entry.changes)
    client.cookies.clear()
    assert (await sign_in(client, "ada@example.com", password)).status_code == 303
    assert (await client.get("/members")).status_code == 403  # an editor


async def test_an_admin_manages_members_but_never_an_owner(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    owner = await add_member(db, org_id=me.org.id, role=Role.OWNER)
    editor = await add_member(db, org_id=me.org.id, role=Role.EDITOR)
    viewer = await add_member(db, org_id=me.org.id, role=Role.VIEWER)
    page = await client.get("/members")
    assert f'action="/members/{owner.id}/role"' not in page.text  # no controls on an owner
    assert f'action="/members/{editor.id}/role"' in page.text
    assert "<option>owner</option>" not in page.text
    csrf = {"csrf_token": me.csrf}
    new_owner = await client.post("/members", data={"email": "o@example.com", "role": "owner",
                                                     **csrf})  # fmt: skip
    assert new_owner.status_code == 403
    assert "an admin cannot make, change or remove an owner" in new_owner.text
    promote = await client.post(f"/members/{editor.id}/role", data={"role": "owner", **csrf})
    assert promote.status_code == 403
    demote = await client.post(f"/members/{owner.id}/role", data={"role": "viewer", **csrf})
    assert demote.status_code == 403
    remove_owner = await client.post(f"/members/{owner.id}/remove", data=csrf)
    assert remove_owner.status_code == 403
    assert (await _role_of(db, owner.id), await _role_of(db, editor.id)) == ("owner", "editor")

    changed = await client.post(f"/members/{editor.id}/role", data={"role": "viewer", **csrf})
    assert changed.status_code == 303
    assert await _role_of(db, editor.id) == "viewer"
    [update] = await _entries(db, "member.update")
    assert (update.actor, update.target_id) == (f"member {me.member.id}", editor.id)
    assert update.changes == {"role": {"from": "editor", "to": "viewer"}}

    other = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with other:  # the viewer, signed in elsewhere, is signed out by the removal
        assert (await sign_in(other, viewer.email)).status_code == 303
        confirm = await client.get(f"/members/{viewer.id}/remove")  # a step first
        assert confirm.status_code == 200
        assert f'action="/members/{viewer.id}/remove"' in confirm.text
        assert viewer.email in confirm.text
        assert await _role_of(db, viewer.id) == "viewer"  # asking removed nobody
        removed = await client.post(f"/members/{viewer.id}/remove", data=csrf)
        assert removed.status_code == 303
        assert (await other.get("/")).status_code == 303  # to /login
    assert await _role_of(db, viewer.id) is None
    [delete] = await _entries(db, "member.delete")
    assert (delete.actor, delete.target_id) == (f"member {me.member.id}", viewer.id)


async def test_the_last_owner_can_neither_demote_nor_remove_themselves(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    csrf = {"csrf_token": me.csrf}
    demote = await client.post(f"/members/{me.member.id}/role", data={"role": "admin", **csrf})
    assert demote.status_code == 409
    assert "last owner" in demote.text
    remove = await client.post(f"/members/{me.member.id}/remove", data=csrf)
    assert remove.status_code == 409
    assert await _role_of(db, me.member.id) == "owner"
    second = await add_member(db, org_id=me.org.id, role=Role.ADMIN)
    promoted = await client.post(f"/members/{second.id}/role", data={"role": "owner", **csrf})
    assert promoted.status_code == 303
    stepped_down = await client.post(
        f"/members/{me.member.id}/role", data={"role": "admin", **csrf}
    )
    assert stepped_down.status_code == 303
    assert (await _role_of(db, me.member.id), await _role_of(db, second.id)) == ("admin", "owner")


async def test_editors_are_refused_and_another_org_s_member_is_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = await make_org(db, "Other")
    theirs = await add_member(db, org_id=other.id, role=Role.VIEWER)
    me = await signed_in(client, db, role=Role.OWNER)
    csrf = {"csrf_token": me.csrf}
    assert (await client.post(f"/members/{theirs.id}/role",
                              data={"role": "admin", **csrf})).status_code == 404  # fmt: skip
    assert (await client.post(f"/members/{theirs.id}/remove", data=csrf)).status_code == 404
    assert (await client.post("/members", data={"email": "x@example.com"})).status_code == 403
    assert await _role_of(db, theirs.id) == "viewer"
    for role in (Role.EDITOR, Role.VIEWER):
        client.cookies.clear()
        who = await signed_in(client, db, role=role, org=me.org)
        assert (await client.get("/members")).status_code == 403
        denied = await client.post(
            "/members", data={"email": "y@example.com", "role": "viewer", "csrf_token": who.csrf}
        )
        assert denied.status_code == 403
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(Member).where(Member.email == "y@example.com")) is None
