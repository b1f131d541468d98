"""GET /audit: what an entry says (diffs; secrets as changed only), filters, pages, that
nothing in the API alters it, and that reading it takes a manage key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import text

from tests.support.factories import OrgWithKey, make_org
from tidings.db.engine import Database

FIRST_PASSWORD = "audit-first-password-7f3a"
SECOND_PASSWORD = "audit-second-password-91bc"


async def _audit(client: httpx.AsyncClient, org: OrgWithKey, query: str = "") -> dict[str, Any]:
    response = await client.get(f"/v1/orgs/{org.id}/audit{query}", headers=org.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _stored_changes(db: Database) -> str:
    async with db.transaction(write=False) as session:
        rows = await session.execute(text("SELECT actor, action, changes FROM audit_entries"))
        return repr(rows.all())


async def test_secrets_are_shown_as_changed_never_their_value(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    created = await client.post(
        f"{base}/connections",
        json={
            "name": "relay",
            "channel": "email",
            "kind": "smtp",
            "settings": {"host": "smtp.example.com", "port": 587},
            "credentials": {"username": "tidings", "password": FIRST_PASSWORD},
        },
        headers=h,
    )
    assert created.status_code == 201, created.text
    connection = created.json()["id"]
    changed = await client.patch(
        f"{base}/connections/{connection}",
        json={
            "settings": {"host": "smtp2.example.com", "port": 587},
            "credentials": {"username": "tidings", "password": SECOND_PASSWORD},
        },
        headers=h,
    )
    assert changed.status_code == 200, changed.text
    webhook = await client.post(
        f"{base}/webhooks", json={"url": "https://8.8.8.8/h", "event_types": ["sent"]}, headers=h
    )
    webhook_secret = webhook.json()["secret"]
    issued = await client.post(f"{base}/keys", json={"name": "ci"}, headers=h)
    api_key = issued.json()["api_key"]

    listed = await _audit(client, org)
    update, create = listed["data"][2], listed["data"][3]
    assert create["action"] == "connection.create"
    assert create["changes"]["settings.host"] == {"to": "smtp.example.com"}
    assert create["changes"]["credentials.password"] == {"secret": "set"}
    assert create["changes"]["credentials.username"] == {"secret": "set"}
    assert update["action"] == "connection.update"
    assert update["changes"] == {
        "settings.host": {"from": "smtp.example.com", "to": "smtp2.example.com"},
        "credentials.password": {"secret": "changed"},
    }
    assert listed["data"][1]["changes"]["secret"] == {"secret": "set"}
    assert listed["data"][0]["changes"]["name"] == {"to": "ci"}

    stored = await _stored_changes(db)
    for secret in (FIRST_PASSWORD, SECOND_PASSWORD, webhook_secret, api_key):
        assert secret not in str(listed), secret
        assert secret not in stored, secret


async def test_an_update_records_from_and_to_of_what_it_changed(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await client.patch(base, json={"name": "Acme EU", "sms_countries": ["FR"]}, headers=h)
    await client.put(
        f"{base}/prices",
        json={"prices": [{"channel": "sms", "country": "FR", "amount": 0.05}]},
        headers=h,
    )
    await client.put(
        f"{base}/prices",
        json={"prices": [{"channel": "sms", "country": "FR", "amount": 0.07}]},
        headers=h,
    )
    await client.post(f"{base}/credits/top-ups", json={"amount": 25, "note": "Dec"}, headers=h)
    data = (await _audit(client, org))["data"]
    assert [e["action"] for e in data] == [
        "credits.top_up",
        "prices.set",
        "prices.set",
        "org.update",
    ]
    assert data[3]["changes"] == {
        "name": {"from": "Acme", "to": "Acme EU"},
        "sms_countries": {"from": None, "to": ["FR"]},
    }
    assert data[2]["changes"] == {"sms:FR": {"to": 0.05}}
    assert data[1]["changes"] == {"sms:FR": {"from": 0.05, "to": 0.07}}
    assert data[0]["changes"]["amount"] == {"to": 25}
    assert data[0]["changes"]["note"] == {"to": "Dec"}


async def test_contact_actions_hold_counts_never_a_persons_data(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    up = await client.post(
        f"{base}/contacts",
        json={
            "contacts": [
                {"email": "bob@example.com", "first_name": "Bobby"},
                {"email": "carol@example.com", "phone": "not a phone"},
            ]
        },
        headers=h,
    )
    await client.post(
        f"{base}/contacts",
        json={"contacts": [{"email": "bob@example.com", "phone": "+33612345678"}]},
        headers=h,
    )
    await client.post(
        f"{base}/suppressions",
        json={"suppressions": [{"channel": "sms", "address": "+33612345678"}]},
        headers=h,
    )
    contact = up.json()["results"][0]["id"]
    erased = await client.post(f"{base}/contacts/{contact}/erase", headers=h)
    assert erased.status_code == 200
    data = (await _audit(client, org))["data"]
    assert [(e["action"], e["target_id"]) for e in data] == [
        ("contact.erase", contact),
        ("suppression.add", None),
        ("contact.upsert", None),
        ("contact.upsert", None),
    ]
    assert data[3]["changes"] == {"created": 1, "updated": 0, "failed": 1}
    assert data[2]["changes"] == {"created": 0, "updated": 1, "failed": 0}
    assert data[1]["changes"] == {"created": 1, "existing": 0, "failed": 0}
    assert set(data[0]["changes"]) == {"erased_at"}
    stored = await _stored_changes(db)
    for personal in ("bob@example.com", "Bobby", "carol@", "33612345678"):
        assert personal not in str(data)
        assert personal not in stored


async def test_filters_and_pages(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    lists = []
    for n in range(5):
        made = await client.post(f"{base}/lists", json={"name": f"l{n}"}, headers=h)
        lists.append(made.json()["id"])
    await client.patch(f"{base}/lists/{lists[0]}", json={"name": "renamed"}, headers=h)
    issued = (await client.post(f"{base}/keys", json={"name": "other"}, headers=h)).json()
    other = {"Authorization": f"Bearer {issued['api_key']}"}
    await client.post(f"{base}/lists", json={"name": "by other"}, headers=other)

    # Newest first, two at a time, every entry once.
    seen, cursor = [], None
    while True:
        page = await _audit(client, org, f"?limit=2{f'&cursor={cursor}' if cursor else ''}")
        assert len(page["data"]) <= 2
        seen += [e["id"] for e in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 8
    assert seen == sorted(seen, reverse=True)

    created = await _audit(client, org, "?action=list.create")
    assert len(created["data"]) == 6
    target = await _audit(client, org, f"?target_kind=list&target_id={lists[0]}")
    assert [e["action"] for e in target["data"]] == ["list.update", "list.create"]
    assert len((await _audit(client, org, "?target_kind=key"))["data"]) == 1
    by_other = await _audit(client, org, f"?key_id={issued['id']}")
    assert [e["changes"]["name"]["to"] for e in by_other["data"]] == ["by other"]
    assert by_other["data"][0]["actor"] == f"key {issued['id']}"

    now = datetime.now(UTC)
    later = (now + timedelta(hours=1)).isoformat()
    assert (await _audit(client, org, f"?since={later.replace('+', '%2B')}"))["data"] == []
    earlier = (now - timedelta(hours=1)).replace(tzinfo=None).isoformat()  # naive: UTC
    assert len((await _audit(client, org, f"?since={earlier}&limit=100"))["data"]) == 8
    assert (await _audit(client, org, f"?until={earlier}"))["data"] == []

    for query, field in (
        ("?action=list.explode", "query.action"),
        ("?target_kind=spaceship", "query.target_kind"),
        ("?since=yesterday", "query.since"),
        ("?cursor=nonsense", "cursor"),
    ):
        bad = await client.get(f"{base}/audit{query}", headers=h)
        assert bad.status_code == 422, query
        assert bad.json()["errors"][0]["field"] == field


async def test_nothing_alters_the_log_and_it_takes_a_manage_key(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await client.post(f"{base}/lists", json={"name": "l"}, headers=h)
    before = await _audit(client, org)
    entry = before["data"][0]["id"]
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        for path, status in ((f"{base}/audit", 405), (f"{base}/audit/{entry}", 404)):
            response = await client.request(method, path, json={"action": "x"}, headers=h)
            assert response.status_code == status, (method, path, response.status_code)
    assert await _audit(client, org) == before

    spec = (await client.get("/openapi.json")).json()
    assert set(spec["paths"]["/v1/orgs/{org_id}/audit"]) == {"get"}
    assert not any(p.startswith("/v1/orgs/{org_id}/audit/") for p in spec["paths"])
    operation = spec["paths"]["/v1/orgs/{org_id}/audit"]["get"]
    assert {"200", "422"} <= set(operation["responses"])

    reader = (
        await client.post(f"{base}/keys", json={"name": "r", "scopes": ["read"]}, headers=h)
    ).json()
    refused = await client.get(
        f"{base}/audit", headers={"Authorization": f"Bearer {reader['api_key']}"}
    )
    assert refused.status_code == 403
