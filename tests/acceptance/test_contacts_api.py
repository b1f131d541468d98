from __future__ import annotations

from typing import Any

import httpx

from tests.support.factories import contact, make_org, upsert
from tidings.db.engine import Database


async def test_500_rows_with_10_bad_store_490_and_report_the_10(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    rows: list[Any] = [contact(i, attributes={"n": i}) for i in range(500)]
    bad = {
        7: "email",
        42: "phone",
        77: "email",
        123: "locale",
        160: "attributes",
        222: "subscriptions.email",
        301: "first_name",
        333: "contact",
        404: "email",
        480: "timezone",
    }
    rows[7]["email"] = "nope"
    rows[42]["phone"] = "+1 not a number"
    rows[77] = {"first_name": "no email or phone"}
    rows[123]["locale"] = "not a locale!"
    rows[160]["attributes"] = ["not", "an", "object"]
    rows[222]["subscriptions"] = {"email": "maybe"}
    rows[301]["first_name"] = "x" * 201
    rows[333] = 12
    rows[404]["email"] = "a@b@c"
    rows[480]["timezone"] = "Europe/Atlantis"

    report = await upsert(client, org, rows)

    assert (report["created"], report["updated"], report["failed"]) == (490, 0, 10)
    assert {e["index"]: e["field"] for e in report["errors"]} == bad
    assert all(e["reason"] for e in report["errors"])
    assert len(report["results"]) == 500
    listed = await client.get(f"/v1/orgs/{org.id}/contacts?limit=500", headers=org.bearer)
    assert len(listed.json()["data"]) == 490


async def test_an_envelope_error_is_a_problem_naming_the_field(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    too_many = {"contacts": [contact(i) for i in range(10_001)]}
    response = await client.post(f"/v1/orgs/{org.id}/contacts", json=too_many, headers=org.bearer)
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"][0]["field"] == "contacts"
    assert problem["instance"] == f"/v1/orgs/{org.id}/contacts"


async def test_pages_follow_the_cursor_without_gaps(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await upsert(client, org, [contact(i) for i in range(25)])
    seen: list[str] = []
    url = f"/v1/orgs/{org.id}/contacts?limit=10"
    cursor = None
    while True:
        page = (
            await client.get(url + (f"&cursor={cursor}" if cursor else ""), headers=org.bearer)
        ).json()
        seen += [c["email"] for c in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"person{i}@example.com" for i in range(25)]
    bad = await client.get(url + "&cursor=zzz", headers=org.bearer)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


async def test_csv_import_through_the_api(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    made = await client.post(
        f"/v1/orgs/{org.id}/lists", json={"name": "imported"}, headers=org.bearer
    )
    list_id = made.json()["id"]
    csv_text = "email,first_name,plan\n" + "".join(
        f"{'broken' if i == 3 else f'c{i}@example.com'},C{i},{'pro' if i % 2 else 'free'}\n"
        for i in range(20)
    )
    response = await client.post(
        f"/v1/orgs/{org.id}/contacts/import?list_id={list_id}",
        content=csv_text.encode(),
        headers={**org.bearer, "Content-Type": "text/csv"},
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows"], report["created"], report["failed"]) == (20, 19, 1)
    assert report["errors"] == [
        {"index": 3, "field": "email", "reason": report["errors"][0]["reason"]}
    ]
    members = await client.get(
        f"/v1/orgs/{org.id}/contacts?list_id={list_id}&limit=100", headers=org.bearer
    )
    assert len(members.json()["data"]) == 19
    assert members.json()["data"][1]["attributes"] == {"plan": "pro"}

    wrong_type = await client.post(
        f"/v1/orgs/{org.id}/contacts/import",
        content=b"{}",
        headers={**org.bearer, "Content-Type": "application/json"},
    )
    assert wrong_type.status_code == 422


async def test_erase_through_the_api(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    report = await upsert(client, org, [contact(1, phone="+14155550100")])
    contact_id = report["results"][0]["id"]
    erased = await client.post(f"/v1/orgs/{org.id}/contacts/{contact_id}/erase", headers=org.bearer)
    assert erased.status_code == 200
    body = erased.json()
    assert (body["email"], body["phone"], body["first_name"]) == (None, None, None)
    assert body["subscriptions"] == {"email": "unsubscribed", "sms": "unsubscribed"}
    found = await client.get(
        f"/v1/orgs/{org.id}/contacts?email=person1@example.com", headers=org.bearer
    )
    assert found.json()["data"] == []


async def test_segment_count_through_the_api(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    await upsert(client, org, [contact(i, attributes={"score": i}) for i in range(10)])
    flt = {"field": "attributes.score", "op": "gte", "value": 7}
    saved = await client.post(
        f"/v1/orgs/{org.id}/segments", json={"name": "top", "filter": flt}, headers=org.bearer
    )
    assert saved.status_code == 201
    assert saved.json()["contacts_count"] == 3
    counted = await client.get(
        f"/v1/orgs/{org.id}/segments/{saved.json()['id']}/count", headers=org.bearer
    )
    assert counted.json() == {"contacts_count": 3}
    bad = await client.post(
        f"/v1/orgs/{org.id}/segments/count",
        json={"filter": {"and": [flt, {"field": "attributes.score", "op": "around", "value": 1}]}},
        headers=org.bearer,
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "filter.and[1].op"
