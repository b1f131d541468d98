"""The console's contacts pages: search, a contact's history, CSV import with its
progress, erase with a confirm step; roles, and another org's objects answering 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import contact, make_org, upsert
from tidings.audit.models import AuditEntry
from tidings.contacts.models import Contact
from tidings.db.engine import Database
from tidings.members.roles import Role


async def test_search_finds_a_contact_by_address_and_pages(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    await upsert(client, me.org, [contact(n) for n in range(1, 56)])
    first = await client.get("/contacts")
    assert first.status_code == 200
    assert first.text.count('href="/contacts/') - first.text.count('href="/contacts/import') == 50
    assert "person1@example.com" in first.text
    assert "person55@example.com" not in first.text
    after = re.search(r"after=(\d+)", first.text)
    assert after is not None
    second = await client.get(f"/contacts?after={after.group(1)}")
    assert "person55@example.com" in second.text
    assert "person1@example.com" not in second.text

    found = await client.get("/contacts", params={"q": "Person7@Example.com"})
    assert "person7@example.com" in found.text
    assert "person8@example.com" not in found.text
    vague = await client.get("/contacts", params={"q": "person"})
    assert vague.status_code == 422
    assert "search by a whole address" in vague.text
    assert "Import a CSV file" not in first.text  # a viewer does not manage


async def test_a_contact_s_page_and_another_org_s_contact(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    body = await upsert(client, me.org, [contact(1, attributes={"plan": "pro"})])
    contact_id = body["results"][0]["id"]
    page = await client.get(f"/contacts/{contact_id}")
    assert page.status_code == 200
    assert "person1@example.com" in page.text
    assert "<code>plan</code> = pro" in page.text
    assert "No messages to this contact." in page.text

    other = await make_org(db, "Other")
    theirs = await upsert(client, other, [contact(2)])
    assert (await client.get(f"/contacts/{theirs['results'][0]['id']}")).status_code == 404
    assert (await client.get("/contacts/999999")).status_code == 404


async def test_erase_needs_a_manager_and_a_confirmation(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    contact_id = (await upsert(client, me.org, [contact(1)]))["results"][0]["id"]
    confirm = await client.get(f"/contacts/{contact_id}/erase")
    assert confirm.status_code == 200
    unconfirmed = await client.post(f"/contacts/{contact_id}/erase", data={"csrf_token": me.csrf})
    assert unconfirmed.status_code == 422
    assert "tick the box" in unconfirmed.text
    no_csrf = await client.post(f"/contacts/{contact_id}/erase", data={"confirm": "yes"})
    assert no_csrf.status_code == 403

    erased = await client.post(
        f"/contacts/{contact_id}/erase", data={"csrf_token": me.csrf, "confirm": "yes"}
    )
    assert erased.status_code == 303
    async with db.transaction(write=False) as session:
        row = await session.get(Contact, contact_id)
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "contact.erase"))
    assert row is not None
    assert row.erased_at is not None
    assert row.email is None
    assert entry is not None
    assert entry.actor == f"member {me.member.id}"
    assert entry.key_id is None


async def test_a_viewer_or_editor_cannot_erase(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    contact_id = (await upsert(client, me.org, [contact(1)]))["results"][0]["id"]
    assert (await client.get(f"/contacts/{contact_id}/erase")).status_code == 403
    refused = await client.post(
        f"/contacts/{contact_id}/erase", data={"csrf_token": me.csrf, "confirm": "yes"}
    )
    assert refused.status_code == 403
    async with db.transaction(write=False) as session:
        row = await session.get(Contact, contact_id)
    assert row is not None
    assert row.erased_at is None


async def test_another_org_s_contact_cannot_be_erased(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    other = await make_org(db, "Other")
    theirs = (await upsert(client, other, [contact(2)]))["results"][0]["id"]
    answer = await client.post(
        f"/contacts/{theirs}/erase", data={"csrf_token": me.csrf, "confirm": "yes"}
    )
    assert answer.status_code == 404
    async with db.transaction(write=False) as session:
        row = await session.get(Contact, theirs)
    assert row is not None
    assert row.erased_at is None


async def test_a_csv_import_runs_and_reports_its_progress(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    form = await client.get("/contacts/import")
    assert form.status_code == 200
    csv = (
        "email,first_name,plan\n"
        "ada@example.com,Ada,pro\nnot-an-address,Bob,free\ncy@example.com,Cy,pro\n"
    )
    started = await client.post(
        "/contacts/import",
        data={"csrf_token": me.csrf},
        files={"file": ("people.csv", csv.encode(), "text/csv")},
    )
    assert started.status_code == 303, started.text
    where = started.headers["location"]
    assert re.fullmatch(r"/contacts/imports/\d+", where)
    page = await client.get(where)
    assert page.status_code == 200
    assert f'data-live="{where}/progress"' in page.text
    progress = await client.get(f"{where}/progress")
    assert 'data-import-status="done"' in progress.text
    assert "3 of 3 rows read" in progress.text
    assert "2 created, 0 updated, 1 failed" in progress.text
    assert "data-live-final" in progress.text
    assert "<code>email</code>" in progress.text  # the bad row's error, beside its field
    found = await client.get("/contacts", params={"q": "ada@example.com"})
    assert "ada@example.com" in found.text
    async with db.transaction(write=False) as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "contact.import")
        )
    assert entry is not None
    assert entry.actor == f"member {me.member.id}"
    assert entry.changes == {"created": 2, "updated": 0, "failed": 1}


async def test_an_import_without_a_file_or_a_header_says_so(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    missing = await client.post("/contacts/import", data={"csrf_token": me.csrf},
                                files={"file": ("", b"", "text/csv")})  # fmt: skip
    assert missing.status_code == 422
    assert "choose a CSV file" in missing.text
    empty = await client.post(
        "/contacts/import",
        data={"csrf_token": me.csrf},
        files={"file": ("empty.csv", b"", "text/csv")},
    )
    assert empty.status_code == 303
    progress = await client.get(empty.headers["location"] + "/progress")
    assert 'data-import-status="failed"' in progress.text
    assert "a header row is required" in progress.text


async def test_imports_are_the_org_s_own_and_need_a_manager(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    started = await client.post(
        "/contacts/import",
        data={"csrf_token": me.csrf},
        files={"file": ("a.csv", b"email\nada@example.com\n", "text/csv")},
    )
    where = started.headers["location"]
    client.cookies.clear()
    await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(where)).status_code == 404
    assert (await client.get(f"{where}/progress")).status_code == 404
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=me.org)
    assert (await client.get("/contacts/import")).status_code == 403
    refused = await client.post(
        "/contacts/import",
        data={"csrf_token": editor.csrf},
        files={"file": ("a.csv", b"email\nbob@example.com\n", "text/csv")},
    )
    assert refused.status_code == 403
