"""The console's templates: create, the editor's live preview for a contact (strict, as
the API's), save as a new version (audited as the member), history and restore; roles
and another org's template answering 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import contact, make_org, upsert
from tidings.audit.models import AuditEntry
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.templates.models import Template

NEW = {
    "name": "Welcome",
    "channel": "email",
    "subject": "Hello {{ first_name }}",
    "html": "<p>Hi {{ first_name }}</p>",
    "text": "Hi {{ first_name }}",
}


async def _created(client: httpx.AsyncClient, csrf: str) -> str:
    answer = await client.post("/templates", data={**NEW, "csrf_token": csrf})
    assert answer.status_code == 303, answer.text
    where: str = answer.headers["location"]
    assert re.fullmatch(r"/templates/\d+", where)
    return where


async def test_create_edit_preview_and_restore(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    await upsert(client, me.org, [contact(1, first_name="Ada")])
    where = await _created(client, me.csrf)
    editor = await client.get(where)
    assert editor.status_code == 200
    assert f'hx-post="{where}/preview"' in editor.text

    headers = {"X-CSRF-Token": me.csrf, "HX-Request": "true"}
    unsaved = {"subject": "Dear {{ first_name }}", "html": "<b>{{ first_name }}</b>", "text": ""}
    shown = await client.post(
        f"{where}/preview", data={**unsaved, "preview_for": "person1@example.com"},
        headers=headers,
    )  # fmt: skip
    assert shown.status_code == 200
    assert '<span data-part="subject">Dear Ada</span>' in shown.text
    assert 'srcdoc="&lt;b&gt;Ada&lt;/b&gt;"' in shown.text  # escaped into a sandboxed frame
    strict = await client.post(
        f"{where}/preview", data={**unsaved, "text": "Your {{ survey }}"}, headers=headers
    )
    assert "data-rendered" not in strict.text
    assert "survey" in strict.text  # an undefined variable is an error, named
    unknown = await client.post(
        f"{where}/preview", data={**unsaved, "preview_for": "nobody@example.com"},
        headers=headers,
    )  # fmt: skip
    assert "no contact has this address" in unknown.text

    saved = await client.post(where, data={"name": "Welcome", **unsaved, "csrf_token": me.csrf})
    assert saved.status_code == 303
    broken = await client.post(
        where, data={"name": "Welcome", "subject": "{{ oops", "html": "x", "csrf_token": me.csrf}
    )
    assert broken.status_code == 422
    assert "field-error" in broken.text
    assert "{{ oops" in broken.text  # the editor keeps what was typed
    async with db.transaction(write=False) as session:
        stored = await session.scalar(select(Template))
    assert stored is not None
    assert stored.version == 2
    assert stored.subject == "Dear {{ first_name }}"
    assert stored.text is None

    history = await client.get(f"{where}/versions")
    assert "Version 2 (current)" in history.text
    assert f"member {me.member.id}" in history.text
    restored = await client.post(f"{where}/versions/1/restore", data={"csrf_token": me.csrf})
    assert restored.status_code == 303
    async with db.transaction(write=False) as session:
        stored = await session.scalar(select(Template))
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.action.like("template.%"))
                .order_by(AuditEntry.id)
            )
        )
        actors = set(
            await session.scalars(
                select(AuditEntry.actor).where(AuditEntry.action.like("template.%"))
            )
        )
    assert stored is not None
    assert stored.version == 3
    assert stored.subject == "Hello {{ first_name }}"
    assert actions == ["template.create", "template.update", "template.restore"]
    assert actors == {f"member {me.member.id}"}


async def test_create_shows_the_api_s_messages_beside_the_fields(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    answer = await client.post(
        "/templates", data={**NEW, "name": "", "subject": "", "csrf_token": me.csrf}
    )
    assert answer.status_code == 422
    assert "String should have at least 1 character" in answer.text
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(Template.id)) is None


async def test_a_viewer_reads_and_previews_but_cannot_save(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    where = await _created(client, owner.csrf)
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=owner.org)
    page = await client.get(where)
    assert page.status_code == 200
    assert ">Save</button>" not in page.text
    headers = {"X-CSRF-Token": viewer.csrf}
    preview = await client.post(f"{where}/preview", data={"subject": "Hi", "html": "x"},
                                headers=headers)  # fmt: skip
    assert "data-rendered" in preview.text
    for url in (where, f"{where}/versions/1/restore", "/templates"):
        refused = await client.post(url, data={**NEW, "csrf_token": viewer.csrf})
        assert refused.status_code == 403, url
    assert (await client.get("/templates/new")).status_code == 403


async def test_another_org_s_template_is_not_found(client: httpx.AsyncClient, db: Database) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    where = await _created(client, owner.csrf)
    client.cookies.clear()
    other = await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(where)).status_code == 404
    assert (await client.get(f"{where}/versions")).status_code == 404
    headers = {"X-CSRF-Token": other.csrf}
    assert (await client.post(f"{where}/preview", data={}, headers=headers)).status_code == 404
    for url in (where, f"{where}/versions/1/restore"):
        answer = await client.post(url, data={**NEW, "csrf_token": other.csrf})
        assert answer.status_code == 404, url
