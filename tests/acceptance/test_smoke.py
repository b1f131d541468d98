from __future__ import annotations

import httpx

from tests.support.factories import contact, make_org, upsert
from tidings.db.engine import Database


async def test_upsert_then_read(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    report = await upsert(client, org, [contact(1), contact(2, attributes={"plan": "pro"})])
    assert report["created"] == 2
    listed = (await client.get(f"/v1/orgs/{org.id}/contacts", headers=org.bearer)).json()
    assert [c["email"] for c in listed["data"]] == ["person1@example.com", "person2@example.com"]
