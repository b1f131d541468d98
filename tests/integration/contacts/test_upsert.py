from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select

from tests.support.factories import contact, make_org
from tidings.contacts import service
from tidings.contacts.models import Contact
from tidings.db.engine import Database
from tidings.errors import InvalidInput
from tidings.lists import service as lists


async def _upsert(db: Database, org_id: int, rows: list[Any], **kw: Any) -> service.UpsertReport:
    async with db.transaction() as session:
        return await service.upsert_contacts(session, org_id=org_id, rows=rows, **kw)


async def _contacts(db: Database, org_id: int) -> list[Contact]:
    async with db.session() as session:
        found = await session.scalars(
            select(Contact).where(Contact.org_id == org_id).order_by(Contact.id)
        )
        return list(found)


async def test_creates_then_updates_by_email_changing_only_given_fields(db: Database) -> None:
    org = await make_org(db)
    first = await _upsert(
        db, org.id, [{"email": "Ada@Example.COM", "first_name": "Ada", "attributes": {"a": 1}}]
    )
    assert (first.created, first.updated, first.failed) == (1, 0, 0)

    second = await _upsert(
        db, org.id, [{"email": "ada@example.com", "last_name": "Lovelace", "attributes": {"b": 2}}]
    )
    assert (second.created, second.updated) == (0, 1)
    [stored] = await _contacts(db, org.id)
    assert stored.email == "ada@example.com"
    assert (stored.first_name, stored.last_name) == ("Ada", "Lovelace")
    assert stored.attributes == {"a": 1, "b": 2}
    assert second.outcomes[0].contact_id == first.outcomes[0].contact_id == stored.id


async def test_null_attribute_removes_the_key(db: Database) -> None:
    org = await make_org(db)
    await _upsert(db, org.id, [contact(1, attributes={"keep": "x", "drop": "y"})])
    await _upsert(db, org.id, [contact(1, attributes={"drop": None})])
    [stored] = await _contacts(db, org.id)
    assert stored.attributes == {"keep": "x"}


async def test_phone_keys_a_contact_and_is_read_in_the_org_region(db: Database) -> None:
    org = await make_org(db, phone_region="FR")
    await _upsert(db, org.id, [{"phone": "06 12 34 56 78", "first_name": "Marie"}])
    report = await _upsert(db, org.id, [{"phone": "+33612345678", "email": "marie@example.fr"}])
    assert report.updated == 1
    [stored] = await _contacts(db, org.id)
    assert (stored.phone, stored.email, stored.first_name) == (
        "+33612345678",
        "marie@example.fr",
        "Marie",
    )


async def test_email_and_phone_of_two_different_contacts_is_reported_on_phone(db: Database) -> None:
    org = await make_org(db)
    await _upsert(db, org.id, [{"email": "a@example.com"}, {"phone": "+14155550100"}])
    report = await _upsert(db, org.id, [{"email": "a@example.com", "phone": "+14155550100"}])
    assert report.failed == 1
    [error] = report.errors
    assert (error.index, error.field) == (0, "phone")
    assert [c.phone for c in await _contacts(db, org.id)] == [None, "+14155550100"]


async def test_rows_naming_the_same_person_merge_later_wins(db: Database) -> None:
    org = await make_org(db)
    report = await _upsert(
        db,
        org.id,
        [
            {"email": "x@example.com", "first_name": "First"},
            {"email": "y@example.com"},
            {"email": "X@example.com", "first_name": "Second", "phone": "+14155550101"},
        ],
    )
    assert (report.created, report.failed) == (2, 0)
    assert report.outcomes[0].contact_id == report.outcomes[2].contact_id
    stored = {c.email: c for c in await _contacts(db, org.id)}
    assert stored["x@example.com"].first_name == "Second"
    assert stored["x@example.com"].phone == "+14155550101"


async def test_bad_rows_are_reported_and_good_neighbours_stored(db: Database) -> None:
    org = await make_org(db)
    rows: list[Any] = [contact(i) for i in range(500)]
    bad = {
        3: "email",
        50: "phone",
        99: "email",
        120: "first_name",
        200: "timezone",
        250: "attributes.Bad Name",
        300: "contact",
        350: "unknown",
        400: "email",
        499: "phone",
    }
    rows[3]["email"] = "not-an-email"
    rows[50]["phone"] = "12"
    rows[99] = {"first_name": "no key"}
    rows[120]["first_name"] = "line\r\nBcc: victim@example.com"
    rows[200]["timezone"] = "Mars/Olympus"
    rows[250]["attributes"] = {"Bad Name": 1}
    rows[300] = "not an object"
    rows[350]["unknown"] = 1
    rows[400]["email"] = "two@@example.com"
    rows[499]["phone"] = "+999"

    report = await _upsert(db, org.id, rows)

    assert (report.created, report.failed) == (490, 10)
    assert {e.index: e.field for e in report.errors} == bad
    assert len(await _contacts(db, org.id)) == 490
    assert {o.index for o in report.outcomes if o.status == "failed"} == set(bad)


async def test_unknown_list_is_refused_naming_it(db: Database) -> None:
    org = await make_org(db)
    with pytest.raises(InvalidInput) as caught:
        await _upsert(db, org.id, [contact(1)], list_ids=[999])
    assert caught.value.errors[0].field == "list_ids[0]"
    assert await _contacts(db, org.id) == []


async def test_stored_rows_join_the_given_lists(db: Database) -> None:
    org = await make_org(db)
    async with db.transaction() as session:
        made = await lists.create_list(session, org_id=org.id, name="panel", description=None)
    await _upsert(db, org.id, [contact(1), contact(2), {"email": "bad"}], list_ids=[made.list.id])
    await _upsert(db, org.id, [contact(2), contact(3)], list_ids=[made.list.id])
    async with db.session() as session:
        counted = await lists.get_list(session, org_id=org.id, list_id=made.list.id)
    assert counted.contacts_count == 3


async def test_concurrent_upserts_of_the_same_people_converge(db: Database) -> None:
    org = await make_org(db)
    rows = [contact(i) for i in range(200)]
    reports = await asyncio.gather(*(_upsert(db, org.id, rows) for _ in range(4)))
    assert sum(r.created for r in reports) == 200
    assert all(r.failed == 0 for r in reports)
    assert len(await _contacts(db, org.id)) == 200


async def test_another_orgs_contact_with_the_same_email_is_separate(db: Database) -> None:
    a = await make_org(db, "A")
    b = await make_org(db, "B")
    await _upsert(db, a.id, [contact(1, first_name="A's")])
    report = await _upsert(db, b.id, [contact(1, first_name="B's")])
    assert report.created == 1
    assert [c.first_name for c in await _contacts(db, a.id)] == ["A's"]


async def test_stored_attributes_stay_under_the_cap_after_merging(db: Database) -> None:
    org = await make_org(db)
    half = "x" * 9_000
    await _upsert(db, org.id, [contact(1, attributes={"a": half})])
    report = await _upsert(db, org.id, [contact(1, attributes={"b": half}), contact(2)])
    assert report.failed == 1
    assert [(e.index, e.field) for e in report.errors] == [(0, "attributes")]
    stored = {c.email: c for c in await _contacts(db, org.id)}
    assert stored["person1@example.com"].attributes == {"a": half}
    assert "person2@example.com" in stored
