"""PATCH and DELETE of campaigns, connections and templates: changes checked like a
creation, deletion refused (409) while a send in flight or a campaign uses the object,
hidden (404) after, with the sends that used it still readable; new connection
credentials reach the messages not handed over yet, and are never answered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.factories import OrgWithKey, make_org, upsert
from tests.support.smtp_server import HOST, SmtpServer
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher

OLD_SECRET = "old-smtp-secret-1"
NEW_SECRET = "new-smtp-secret-2"
LATER = "2999-01-01T00:00:00Z"


async def _post(client: httpx.AsyncClient, org: OrgWithKey, path: str, body: Any) -> Any:
    response = await client.post(f"/v1/orgs/{org.id}{path}", json=body, headers=org.bearer)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _template(client: httpx.AsyncClient, org: OrgWithKey, name: str = "t") -> int:
    body = {"name": name, "channel": "email", "subject": "s", "text": "x"}
    return int((await _post(client, org, "/templates", body))["id"])


async def _campaign(
    client: httpx.AsyncClient, org: OrgWithKey, template_id: int, **fields: Any
) -> dict[str, Any]:
    body = {"name": "c", "channel": "email", "template_id": template_id,
            "from_email": "a@acme.example", **fields}  # fmt: skip
    result: dict[str, Any] = await _post(client, org, "/campaigns", body)
    return result


async def test_a_campaign_change_is_checked_like_a_new_campaign(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign = await _campaign(client, org, await _template(client, org))
    sms = await _post(client, org, "/templates", {"name": "s", "channel": "sms", "text": "hi"})
    await _campaign(client, org, campaign["template_id"], name="taken")
    url, h = f"/v1/orgs/{org.id}/campaigns/{campaign['id']}", org.bearer

    changed = await client.patch(
        url, json={"from_name": "Acme", "purpose": "marketing", "reply_to": None}, headers=h
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["from_name"], changed.json()["purpose"]) == ("Acme", "marketing")
    for body, field in (
        ({"from_email": "not an address"}, "from_email"),
        ({"template_id": sms["id"]}, "template_id"),
        ({"from_email": None}, "from_email"),
        ({"name": "taken"}, "name"),
        ({"connection_id": 999}, "connection_id"),
        ({"channel": "sms"}, "channel"),
    ):
        refused = await client.patch(url, json=body, headers=h)
        assert refused.status_code == 422, (body, refused.text)
        assert field in {e["field"] for e in refused.json()["errors"]}, (body, refused.text)
    nulled = await client.patch(url, json={"name": None}, headers=h)
    assert nulled.status_code == 422
    assert "name cannot be null" in nulled.json()["detail"]
    assert (await client.get(url, headers=h)).json()["from_email"] == "a@acme.example"


async def test_a_campaign_in_flight_cannot_be_deleted_then_is_hidden(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await upsert(client, org, [{"email": "p@example.com"}])
    campaign = await _campaign(client, org, await _template(client, org))
    url, h = f"/v1/orgs/{org.id}/campaigns/{campaign['id']}", org.bearer
    body = {"name": "b", "campaign_id": campaign["id"], "send_to_all": True, "scheduled_at": LATER}
    broadcast = await _post(client, org, "/broadcasts", body)

    refused = await client.delete(url, headers=h)
    assert refused.status_code == 409
    assert f"broadcast {broadcast['id']}" in refused.json()["detail"]

    await client.post(f"/v1/orgs/{org.id}/broadcasts/{broadcast['id']}/cancel", headers=h)
    assert (await client.delete(url, headers=h)).status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await client.patch(url, json={"name": "x"}, headers=h)).status_code == 404
    assert (await client.delete(url, headers=h)).status_code == 404
    listed = (await client.get(f"/v1/orgs/{org.id}/campaigns", headers=h)).json()["data"]
    assert campaign["id"] not in [c["id"] for c in listed]
    kept = await client.get(f"/v1/orgs/{org.id}/broadcasts/{broadcast['id']}", headers=h)
    assert kept.status_code == 200  # what used it is still there
    again = await _campaign(client, org, campaign["template_id"])  # its name is free again
    assert again["id"] != campaign["id"]
    sent = await client.post(
        f"/v1/orgs/{org.id}/broadcasts",
        json={"name": "b2", "campaign_id": campaign["id"], "send_to_all": True},
        headers=h,
    )
    assert sent.status_code == 404


async def test_a_single_send_in_flight_holds_its_campaign_template_and_connection(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await upsert(client, org, [{"email": "p@example.com"}])
    connection = await _post(
        client,
        org,
        "/connections",
        {"name": "relay", "channel": "email", "kind": "smtp", "is_default": True,
         "settings": {"host": "mail.example.com"}},
    )  # fmt: skip
    template_id = await _template(client, org)
    message = await _post(
        client,
        org,
        "/messages",
        {"template_id": template_id, "to": {"email": "p@example.com"},
         "from_email": "a@acme.example", "send_at": LATER},
    )  # fmt: skip
    h = org.bearer
    for path, what in (
        (f"/templates/{template_id}", "template"),
        (f"/connections/{connection['id']}", "connection"),  # the default, frozen
    ):
        refused = await client.delete(f"/v1/orgs/{org.id}{path}", headers=h)
        assert refused.status_code == 409, (path, refused.text)
        assert refused.json()["detail"] == (
            f"message {message['id']} is being sent with this {what}; try once it ends"
        )


async def test_what_a_campaign_uses_cannot_be_deleted_before_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    connection = await _post(
        client,
        org,
        "/connections",
        {"name": "relay", "channel": "email", "kind": "smtp",
         "settings": {"host": "mail.example.com"}},
    )  # fmt: skip
    campaign = await _campaign(
        client, org, await _template(client, org), connection_id=connection["id"]
    )
    h, base = org.bearer, f"/v1/orgs/{org.id}"
    for path in (f"/templates/{campaign['template_id']}", f"/connections/{connection['id']}"):
        refused = await client.delete(f"{base}{path}", headers=h)
        assert refused.status_code == 409
        assert refused.json()["detail"].startswith(f"campaign {campaign['id']} uses this")
    assert (await client.delete(f"{base}/campaigns/{campaign['id']}", headers=h)).status_code == 204
    for path in (f"/templates/{campaign['template_id']}", f"/connections/{connection['id']}"):
        assert (await client.delete(f"{base}{path}", headers=h)).status_code == 204
        assert (await client.get(f"{base}{path}", headers=h)).status_code == 404
    assert (await client.get(f"{base}/connections", headers=h)).json() == []
    template_page = (await client.get(f"{base}/templates", headers=h)).json()
    assert template_page["data"] == []


@pytest.fixture
async def relay() -> AsyncIterator[SmtpServer]:
    server = SmtpServer(credentials=("tidings", NEW_SECRET))
    await server.start()
    yield server
    await server.stop()


async def test_new_credentials_reach_messages_not_handed_over_and_are_never_answered(
    client: httpx.AsyncClient, db: Database, relay: SmtpServer
) -> None:
    org = await make_org(db)
    await upsert(client, org, [{"email": f"p{i}@example.com"} for i in range(3)])
    connection = await _post(
        client,
        org,
        "/connections",
        {"name": "relay", "channel": "email", "kind": "smtp", "is_default": True,
         "settings": {"host": HOST, "port": relay.port, "security": "none"},
         "credentials": {"username": "tidings", "password": OLD_SECRET}},
    )  # fmt: skip
    campaign = await _campaign(client, org, await _template(client, org))
    body = {"campaign_id": campaign["id"], "send_to_all": True}
    before = await _post(client, org, "/broadcasts", {"name": "before", **body})
    dispatcher = Dispatcher(db, renderer=Renderer())
    try:
        await dispatcher.drain()  # the old password: refused by the relay
        refused = len(relay.logins)
        accepted = await _post(client, org, "/broadcasts", {"name": "accepted", **body})
        url, h = f"/v1/orgs/{org.id}/connections/{connection['id']}", org.bearer
        rotated = await client.patch(
            url,
            json={"credentials": {"username": "tidings", "password": NEW_SECRET}},
            headers=h,
        )
        assert rotated.status_code == 200, rotated.text
        await dispatcher.drain()  # the same worker: it builds the channel again
    finally:
        await dispatcher.close()

    base = f"/v1/orgs/{org.id}/broadcasts"
    failed = (await client.get(f"{base}/{before['id']}", headers=h)).json()
    assert (failed["sent_count"], failed["failed_count"]) == (0, 3)
    sent = (await client.get(f"{base}/{accepted['id']}", headers=h)).json()
    assert (sent["status"], sent["sent_count"]) == ("SENT", 3)
    logins = [accepted for _, _, accepted in relay.logins]
    assert refused > 0
    assert logins[:refused] == [False] * refused
    assert len(logins) > refused  # a new channel logged in anew …
    assert all(logins[refused:])  # … with the new password
    assert len(relay.received) == 3
    for response in (
        rotated,
        await client.get(url, headers=h),
        await client.get(f"/v1/orgs/{org.id}/connections", headers=h),
        await client.patch(url, json={"max_concurrency": 4}, headers=h),
    ):
        assert response.status_code == 200
        assert NEW_SECRET not in response.text
        assert OLD_SECRET not in response.text
    assert rotated.json()["credentials_set"] == ["password", "username"]
    bad = await client.patch(url, json={"credentials": {"password": NEW_SECRET, "x": 1}}, headers=h)
    assert bad.status_code == 422
    assert NEW_SECRET not in bad.text
