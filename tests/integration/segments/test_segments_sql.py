"""The filter language evaluated by each database against a known set of contacts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.factories import make_org
from tidings.contacts import service as contacts
from tidings.db.engine import Database
from tidings.errors import InvalidInput
from tidings.lists import service as lists
from tidings.privacy import service as privacy
from tidings.segments import service

PEOPLE: list[dict[str, Any]] = [
    {
        "email": "ada@example.com",
        "first_name": "Ada",
        "attributes": {"plan": "pro", "seats": 12, "beta": True},
    },
    {
        "email": "bob@example.com",
        "first_name": "Bob",
        "attributes": {"plan": "free", "seats": 1, "beta": False},
    },
    {
        "email": "cy@example.com",
        "first_name": "Cy",
        "attributes": {"plan": "pro", "seats": "many"},
        "subscriptions": {"email": "unsubscribed"},
    },
    {"email": "dee@example.org", "first_name": "Dee", "attributes": {"seats": 40}},
    {"phone": "+14155550100", "first_name": "Eve_%", "locale": "fr-FR"},
]

CASES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("text eq", {"field": "attributes.plan", "op": "eq", "value": "pro"}, {"Ada", "Cy"}),
    (
        "ne matches missing",
        {"field": "attributes.plan", "op": "ne", "value": "pro"},
        {"Bob", "Dee", "Eve_%"},
    ),
    (
        "number gte skips non-numbers",
        {"field": "attributes.seats", "op": "gte", "value": 10},
        {"Ada", "Dee"},
    ),
    ("number lt", {"field": "attributes.seats", "op": "lt", "value": 10}, {"Bob"}),
    ("boolean", {"field": "attributes.beta", "op": "eq", "value": True}, {"Ada"}),
    ("boolean false", {"field": "attributes.beta", "op": "eq", "value": False}, {"Bob"}),
    ("exists", {"field": "attributes.plan", "op": "exists"}, {"Ada", "Bob", "Cy"}),
    (
        "exists whatever the type",
        {"field": "attributes.seats", "op": "exists"},
        {"Ada", "Bob", "Cy", "Dee"},
    ),
    (
        "a boolean never equals text",
        {"field": "attributes.beta", "op": "eq", "value": "true"},
        set(),
    ),
    ("a number never equals text", {"field": "attributes.seats", "op": "eq", "value": "12"}, set()),
    ("not_exists", {"field": "attributes.plan", "op": "not_exists"}, {"Dee", "Eve_%"}),
    ("in", {"field": "first_name", "op": "in", "value": ["Ada", "Dee"]}, {"Ada", "Dee"}),
    (
        "not_in matches missing",
        {"field": "email", "op": "not_in", "value": ["ada@example.com"]},
        {"Bob", "Cy", "Dee", "Eve_%"},
    ),
    (
        "contains is case-insensitive",
        {"field": "email", "op": "contains", "value": "EXAMPLE.ORG"},
        {"Dee"},
    ),
    ("wildcards are literal", {"field": "first_name", "op": "contains", "value": "_%"}, {"Eve_%"}),
    ("starts_with", {"field": "first_name", "op": "starts_with", "value": "b"}, {"Bob"}),
    ("subscription", {"field": "email_status", "op": "eq", "value": "unsubscribed"}, {"Cy"}),
    (
        "and",
        {
            "and": [
                {"field": "attributes.plan", "op": "eq", "value": "pro"},
                {"field": "email_status", "op": "eq", "value": "subscribed"},
            ]
        },
        {"Ada"},
    ),
    (
        "or",
        {
            "or": [
                {"field": "locale", "op": "eq", "value": "fr-FR"},
                {"field": "attributes.seats", "op": "eq", "value": 1},
            ]
        },
        {"Bob", "Eve_%"},
    ),
    (
        "not treats unknown as false",
        {"not": {"field": "attributes.seats", "op": "gt", "value": 5}},
        {"Bob", "Cy", "Eve_%"},
    ),
    (
        "created_at",
        {"field": "created_at", "op": "gt", "value": "2000-01-01T00:00:00Z"},
        {"Ada", "Bob", "Cy", "Dee", "Eve_%"},
    ),
]


async def _seed(db: Database) -> tuple[int, int]:
    org = await make_org(db)
    async with db.transaction() as session:
        report = await contacts.upsert_contacts(session, org_id=org.id, rows=PEOPLE)
    assert report.failed == 0
    async with db.transaction() as session:
        panel = await lists.create_list(session, org_id=org.id, name="panel", description=None)
    ids = [o.contact_id for o in report.outcomes]
    async with db.transaction() as session:
        await lists.add_members(
            session, org_id=org.id, list_id=panel.list.id, contact_ids=[ids[1], ids[3]]
        )
    return org.id, panel.list.id


async def _names(db: Database, org_id: int, segment_id: int) -> set[str]:
    async with db.session() as session:
        found = await service.segment_contacts(
            session, org_id=org_id, segment_id=segment_id, after_id=None, limit=100
        )
    return {c.first_name or "" for c in found}


@pytest.mark.parametrize(("filter_", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_filter_matches_exactly(
    db: Database, filter_: dict[str, Any], expected: set[str]
) -> None:
    org_id, _ = await _seed(db)
    async with db.transaction() as session:
        saved = await service.create_segment(
            session, org_id=org_id, name="s", description=None, filter=filter_
        )
    assert saved.contacts_count == len(expected)
    assert await _names(db, org_id, saved.segment.id) == expected


async def test_list_membership_and_erased_contacts(db: Database) -> None:
    org_id, list_id = await _seed(db)
    async with db.transaction() as session:
        saved = await service.create_segment(
            session, org_id=org_id, name="panel", description=None, filter={"in_list": list_id}
        )
    assert await _names(db, org_id, saved.segment.id) == {"Bob", "Dee"}
    async with db.session() as session:
        outside = await service.count_matching(
            session, org_id=org_id, raw={"not": {"in_list": list_id}}
        )
    assert outside == 3

    async with db.session() as session:
        [bob] = await contacts.list_contacts(
            session, org_id=org_id, after_id=None, limit=1, email="bob@example.com"
        )
    async with db.transaction() as session:
        await privacy.erase_contact(session, org_id=org_id, contact_id=bob.id, erasure_key=b"k")
    assert await _names(db, org_id, saved.segment.id) == {"Dee"}


async def test_a_list_of_another_org_is_refused(db: Database) -> None:
    _, list_id = await _seed(db)
    other = await make_org(db, "Other")
    async with db.transaction() as session:
        with pytest.raises(InvalidInput) as caught:
            await service.create_segment(
                session, org_id=other.id, name="x", description=None, filter={"in_list": list_id}
            )
    assert caught.value.errors[0].field == "filter"


async def test_segments_only_see_their_org(db: Database) -> None:
    await _seed(db)
    other = await make_org(db, "Other")
    async with db.session() as session:
        count = await service.count_matching(
            session, org_id=other.id, raw={"field": "email", "op": "exists"}
        )
    assert count == 0
