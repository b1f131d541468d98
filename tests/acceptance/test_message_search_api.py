"""GET …/messages by address and date: the query the console's message search uses."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

import httpx

from tests.support.factories import make_org
from tests.support.sending import emailed
from tidings.db.base import utcnow
from tidings.db.engine import Database


async def test_messages_by_address_and_date(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    other = await make_org(db, "Other")
    await emailed(db, org, 3)
    await emailed(db, other, 3)  # the same addresses in another org: never listed
    base, h = f"/v1/orgs/{org.id}/messages", org.bearer

    found = (await client.get(f"{base}?address=P2@Example.com", headers=h)).json()["data"]
    assert [m["recipient"] for m in found] == ["p2@example.com"]

    now = utcnow()
    since = quote((now - timedelta(hours=1)).isoformat())
    until = quote((now + timedelta(hours=1)).isoformat())
    recent = (await client.get(f"{base}?since={since}&until={until}", headers=h)).json()
    assert len(recent["data"]) == 3
    later = quote((now + timedelta(hours=1)).isoformat())
    assert (await client.get(f"{base}?since={later}", headers=h)).json()["data"] == []

    naive = await client.get(f"{base}?since=2026-12-07T10:00:00", headers=h)
    assert naive.status_code == 422
    assert "since" in naive.text


async def test_an_address_no_column_can_hold_is_refused_naming_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    answer = await client.get(f"/v1/orgs/{org.id}/messages?address=a%00b", headers=org.bearer)
    assert answer.status_code == 422, answer.text
    assert "address" in answer.text
