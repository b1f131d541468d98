"""PATCH semantics: a field left out is unchanged, null clears it, required fields refuse null."""

from __future__ import annotations

import httpx

from tests.support.factories import make_org
from tidings.db.engine import Database


async def test_org_region_is_set_kept_and_cleared(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    url, h = f"/v1/orgs/{org.id}", org.bearer
    assert (await client.patch(url, json={"phone_region": "FR"}, headers=h)).json()[
        "phone_region"
    ] == "FR"
    renamed = (await client.patch(url, json={"name": "Acme SA"}, headers=h)).json()
    assert (renamed["name"], renamed["phone_region"]) == ("Acme SA", "FR")
    cleared = (await client.patch(url, json={"phone_region": None}, headers=h)).json()
    assert (cleared["name"], cleared["phone_region"]) == ("Acme SA", None)

    refused = await client.patch(url, json={"name": None}, headers=h)
    assert refused.status_code == 422
    assert "name cannot be null" in refused.json()["detail"]


async def test_list_and_segment_descriptions_clear(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    h = org.bearer
    made = await client.post(
        f"/v1/orgs/{org.id}/lists", json={"name": "l", "description": "d"}, headers=h
    )
    url = f"/v1/orgs/{org.id}/lists/{made.json()['id']}"
    assert (await client.patch(url, json={"name": "m"}, headers=h)).json()["description"] == "d"
    assert (await client.patch(url, json={"description": None}, headers=h)).json()[
        "description"
    ] is None

    seg = await client.post(
        f"/v1/orgs/{org.id}/segments",
        json={"name": "s", "description": "d", "filter": {"field": "email", "op": "exists"}},
        headers=h,
    )
    seg_url = f"/v1/orgs/{org.id}/segments/{seg.json()['id']}"
    assert (await client.patch(seg_url, json={"filter": None}, headers=h)).status_code == 422
    cleared = (await client.patch(seg_url, json={"description": None}, headers=h)).json()
    assert (cleared["description"], cleared["filter"]) == (None, {"field": "email", "op": "exists"})


async def test_malformed_json_is_reported_on_the_body(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    response = await client.post(
        f"/v1/orgs/{org.id}/contacts",
        content=b'{"contacts": [',
        headers={**org.bearer, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    [error] = response.json()["errors"]
    assert error["field"] == "body"
    assert "index" not in error
