"""The console's segments: the builder's live count, saving (audited, as the member),
the API's messages beside the fields, roles, another org's segment answering 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import contact, make_org, upsert
from tidings.audit.models import AuditEntry
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.segments.models import Segment

PRO_WITH_SEATS = {
    "match": "all",
    "field_0": "attributes.plan",
    "op_0": "eq",
    "value_0": "pro",
    "field_1": "attributes.seats",
    "op_1": "gte",
    "value_1": "10",
}


async def _people(client: httpx.AsyncClient, me_org: object) -> None:
    await upsert(
        client,
        me_org,  # type: ignore[arg-type]
        [
            contact(1, attributes={"plan": "pro", "seats": 12}),
            contact(2, attributes={"plan": "pro", "seats": 3}),
            contact(3, attributes={"plan": "free", "seats": 40}),
            contact(4, attributes={"plan": "pro", "seats": 10}),
        ],
    )


async def test_the_builder_counts_as_the_rows_change(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    await _people(client, me.org)
    page = await client.get("/segments/new")
    assert page.status_code == 200
    assert 'hx-post="/segments/count"' in page.text
    assert "Save the segment" not in page.text  # a viewer counts, does not save
    headers = {"X-CSRF-Token": me.csrf, "HX-Request": "true"}
    both = await client.post("/segments/count", data=PRO_WITH_SEATS, headers=headers)
    assert both.status_code == 200
    assert 'data-count="2"' in both.text
    either = await client.post(
        "/segments/count", data={**PRO_WITH_SEATS, "match": "any"}, headers=headers
    )
    assert 'data-count="4"' in either.text
    listed = await client.post(
        "/segments/count",
        data={"field_0": "attributes.seats", "op_0": "in", "value_0": "3, 40"},
        headers=headers,
    )
    assert 'data-count="2"' in listed.text
    wrong = await client.post(
        "/segments/count", data={"field_0": "nosuchfield", "op_0": "eq", "value_0": "x"},
        headers=headers,
    )  # fmt: skip
    assert "data-count" not in wrong.text
    assert "field-error" in wrong.text
    empty = await client.post("/segments/count", data={}, headers=headers)
    assert "add a condition" in empty.text


async def test_an_admin_saves_a_segment_audited_as_the_member(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    await _people(client, me.org)
    saved = await client.post(
        "/segments", data={**PRO_WITH_SEATS, "name": "Big pro", "csrf_token": me.csrf}
    )
    assert saved.status_code == 303, saved.text
    where = saved.headers["location"]
    assert re.fullmatch(r"/segments/\d+", where)
    page = await client.get(where)
    assert "<strong>2</strong> contacts match now." in page.text
    assert "person1@example.com" in page.text
    assert "person2@example.com" not in page.text
    async with db.transaction(write=False) as session:
        stored = await session.scalar(select(Segment))
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "segment.create")
        )
    assert stored is not None
    assert stored.filter == {
        "and": [
            {"field": "attributes.plan", "op": "eq", "value": "pro"},
            {"field": "attributes.seats", "op": "gte", "value": 10},
        ]
    }
    assert entry is not None
    assert entry.actor == f"member {me.member.id}"
    listed = await client.get("/segments")
    assert "Big pro" in listed.text

    nameless = await client.post("/segments", data={**PRO_WITH_SEATS, "csrf_token": me.csrf})
    assert nameless.status_code == 422
    assert "String should have at least 1 character" in nameless.text  # the API's words
    assert 'value="attributes.seats"' in nameless.text  # the rows kept

    deleted = await client.post(f"{where}/delete", data={"csrf_token": me.csrf})
    assert deleted.status_code == 303
    assert (await client.get(where)).status_code == 404


async def test_an_editor_cannot_save_and_another_org_s_segment_is_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    saved = await client.post(
        "/segments", data={**PRO_WITH_SEATS, "name": "Mine", "csrf_token": me.csrf}
    )
    where = saved.headers["location"]
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=me.org)
    refused = await client.post(
        "/segments", data={**PRO_WITH_SEATS, "name": "Theirs", "csrf_token": editor.csrf}
    )
    assert refused.status_code == 403
    assert (
        await client.post(f"{where}/delete", data={"csrf_token": editor.csrf})
    ).status_code == 403
    client.cookies.clear()
    stranger = await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(where)).status_code == 404
    gone = await client.post(f"{where}/delete", data={"csrf_token": stranger.csrf})
    assert gone.status_code == 404
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(Segment.name)) == "Mine"
