"""Org B's key against every /v1 route and org A's objects: 403 on A's paths, 404 (or a
field error) for A's objects under B's path, no A data in any answer, A unchanged after.

The routes come from the app itself: a route added without a body in BODIES fails here,
so isolation is checked for every route, present and future.
"""

from __future__ import annotations

import re
from typing import Any

import httpx

from tests.support.factories import OrgWithKey, make_org
from tidings.app import create_app
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.settings import Settings

A_EMAIL = "alice.secret@alpha.example"
A_LIST = "alpha-private-list"
A_SEGMENT = "alpha-private-segment"
A_TEMPLATE = "alpha-private-template"
A_CAMPAIGN = "alpha-private-campaign"
A_BROADCAST = "alpha-private-broadcast"
A_CONNECTION = "alpha-private-connection"
A_PASSWORD = "alpha-smtp-password-123"
A_APPLICATION = "alpha-private-application"

# (method, path template) → request body; ids in bodies are filled in from org A's objects.
BODIES: dict[tuple[str, str], Any] = {
    ("GET", "/v1/orgs/{org_id}"): None,
    ("PATCH", "/v1/orgs/{org_id}"): {"name": "hijacked"},
    ("GET", "/v1/orgs/{org_id}/keys"): None,
    ("POST", "/v1/orgs/{org_id}/keys"): {"name": "stolen"},
    ("DELETE", "/v1/orgs/{org_id}/keys/{key_id}"): None,
    ("POST", "/v1/orgs/{org_id}/contacts"): {
        "contacts": [{"email": A_EMAIL, "first_name": "hijacked"}],
        "list_ids": ["{list_id}"],
    },
    ("POST", "/v1/orgs/{org_id}/contacts/import"): "email,first_name\n" + A_EMAIL + ",hijacked\n",
    ("GET", "/v1/orgs/{org_id}/contacts"): None,
    ("GET", "/v1/orgs/{org_id}/contacts/{contact_id}"): None,
    ("POST", "/v1/orgs/{org_id}/contacts/{contact_id}/erase"): None,
    ("GET", "/v1/orgs/{org_id}/contacts/{contact_id}/export"): None,
    ("POST", "/v1/orgs/{org_id}/lists"): {"name": "new"},
    ("GET", "/v1/orgs/{org_id}/lists"): None,
    ("GET", "/v1/orgs/{org_id}/lists/{list_id}"): None,
    ("PATCH", "/v1/orgs/{org_id}/lists/{list_id}"): {"name": "hijacked"},
    ("DELETE", "/v1/orgs/{org_id}/lists/{list_id}"): None,
    ("POST", "/v1/orgs/{org_id}/lists/{list_id}/members"): {"contact_ids": ["{contact_id}"]},
    ("POST", "/v1/orgs/{org_id}/lists/{list_id}/members/remove"): {"contact_ids": ["{contact_id}"]},
    ("POST", "/v1/orgs/{org_id}/segments"): {"name": "spy", "filter": {"in_list": "{list_id}"}},
    ("POST", "/v1/orgs/{org_id}/segments/count"): {"filter": {"in_list": "{list_id}"}},
    ("GET", "/v1/orgs/{org_id}/segments"): None,
    ("GET", "/v1/orgs/{org_id}/segments/{segment_id}"): None,
    ("GET", "/v1/orgs/{org_id}/segments/{segment_id}/count"): None,
    ("GET", "/v1/orgs/{org_id}/segments/{segment_id}/contacts"): None,
    ("PATCH", "/v1/orgs/{org_id}/segments/{segment_id}"): {"name": "hijacked"},
    ("DELETE", "/v1/orgs/{org_id}/segments/{segment_id}"): None,
    ("POST", "/v1/orgs/{org_id}/templates"): {
        "name": "t2", "channel": "sms", "text": "hi {{ first_name }}"
    },
    ("GET", "/v1/orgs/{org_id}/templates"): None,
    ("GET", "/v1/orgs/{org_id}/templates/{template_id}"): None,
    ("PATCH", "/v1/orgs/{org_id}/templates/{template_id}"): {"name": "hijacked"},
    ("POST", "/v1/orgs/{org_id}/templates/{template_id}/preview"): {"contact_id": "{contact_id}"},
    ("DELETE", "/v1/orgs/{org_id}/templates/{template_id}"): None,
    ("GET", "/v1/orgs/{org_id}/templates/{template_id}/versions"): None,
    ("GET", "/v1/orgs/{org_id}/templates/{template_id}/versions/{number}"): None,
    ("POST", "/v1/orgs/{org_id}/templates/{template_id}/versions/{number}/restore"): None,
    ("POST", "/v1/orgs/{org_id}/campaigns"): {
        "name": "c2", "channel": "email", "template_id": "{template_id}",
        "from_email": "x@example.com",
    },
    ("GET", "/v1/orgs/{org_id}/campaigns"): None,
    ("GET", "/v1/orgs/{org_id}/campaigns/{campaign_id}"): None,
    ("PATCH", "/v1/orgs/{org_id}/campaigns/{campaign_id}"): {
        "from_email": "thief@evil.example", "template_id": "{template_id}",
    },
    ("DELETE", "/v1/orgs/{org_id}/campaigns/{campaign_id}"): None,
    ("POST", "/v1/orgs/{org_id}/broadcasts"): {
        "name": "b2", "campaign_id": "{campaign_id}", "list_ids": ["{list_id}"],
    },
    ("GET", "/v1/orgs/{org_id}/broadcasts"): None,
    ("GET", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}"): None,
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/estimate"): None,
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/send"): None,
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/pause"): None,
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/resume"): None,
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/cancel"): None,
    ("GET", "/v1/orgs/{org_id}/messages"): None,
    ("POST", "/v1/orgs/{org_id}/messages"): {
        "campaign_id": "{campaign_id}", "contact_id": "{contact_id}",
    },
    ("GET", "/v1/orgs/{org_id}/messages/{message_id}"): None,
    ("GET", "/v1/orgs/{org_id}/sink/messages"): None,
    ("GET", "/v1/orgs/{org_id}/events"): None,
    ("GET", "/v1/orgs/{org_id}/reports/rejected"): None,
    ("GET", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/stats"): None,
    ("GET", "/v1/orgs/{org_id}/campaigns/{campaign_id}/stats"): None,
    ("POST", "/v1/orgs/{org_id}/connections"): {
        "name": "x", "channel": "email", "kind": "smtp", "settings": {"host": "h"},
    },
    ("GET", "/v1/orgs/{org_id}/connections"): None,
    ("GET", "/v1/orgs/{org_id}/connections/{connection_id}"): None,
    ("GET", "/v1/orgs/{org_id}/connections/{connection_id}/health"): None,
    ("PATCH", "/v1/orgs/{org_id}/connections/{connection_id}"): {
        "credentials": {"username": "thief", "password": "x"},
    },
    ("DELETE", "/v1/orgs/{org_id}/connections/{connection_id}"): None,
    ("POST", "/v1/orgs/{org_id}/campaigns/{campaign_id}/invites"): {
        "recipients": [{"variables": {"email": A_EMAIL}}],
    },
    ("POST", "/v1/orgs/{org_id}/applications"): {"key": "K2", "name": "spy"},
    ("GET", "/v1/orgs/{org_id}/applications"): None,
    ("GET", "/v1/orgs/{org_id}/applications/{application_id}"): None,
    ("PUT", "/v1/orgs/{org_id}/applications/{application_id}/integrations"): {
        "type": "FACEBOOK", "target_url": "https://evil.example/",
    },
    ("DELETE", "/v1/orgs/{org_id}/applications/{application_id}"): None,
    ("GET", "/v1/orgs/{org_id}/credits"): None,
    ("POST", "/v1/orgs/{org_id}/credits/top-ups"): {"amount": 1000, "note": "stolen"},
    ("GET", "/v1/orgs/{org_id}/prices"): None,
    ("GET", "/v1/orgs/{org_id}/suppressions"): None,
    ("POST", "/v1/orgs/{org_id}/suppressions"): {
        "suppressions": [{"channel": "email", "address": "x@evil.example"}],
    },
    ("DELETE", "/v1/orgs/{org_id}/suppressions"): None,
    ("GET", "/v1/orgs/{org_id}/suppressions/export"): None,
    ("GET", "/v1/orgs/{org_id}/suppressions/{suppression_id}"): None,
    ("DELETE", "/v1/orgs/{org_id}/suppressions/{suppression_id}"): None,
    ("PUT", "/v1/orgs/{org_id}/prices"): {"prices": [{"channel": "email", "amount": 99}]},
    ("POST", "/v1/orgs/{org_id}/webhooks"): {
        "url": "https://8.8.8.8/steal", "event_types": ["*"],
    },
    ("GET", "/v1/orgs/{org_id}/webhooks"): None,
    ("GET", "/v1/orgs/{org_id}/webhooks/{webhook_id}"): None,
    ("PATCH", "/v1/orgs/{org_id}/webhooks/{webhook_id}"): {"enabled": False},
    ("DELETE", "/v1/orgs/{org_id}/webhooks/{webhook_id}"): None,
    ("GET", "/v1/orgs/{org_id}/webhooks/{webhook_id}/deliveries"): None,
    ("POST", "/v1/orgs/{org_id}/webhooks/{webhook_id}/test"): None,
    ("GET", "/v1/orgs/{org_id}/audit"): None,
    ("POST", "/v1/orgs/{org_id}/domains"): {"name": "alpha.example"},
    ("GET", "/v1/orgs/{org_id}/domains"): None,
    ("GET", "/v1/orgs/{org_id}/domains/{domain_id}"): None,
    ("DELETE", "/v1/orgs/{org_id}/domains/{domain_id}"): None,
    ("GET", "/v1/orgs/{org_id}/domains/{domain_id}/check"): None,
    ("POST", "/v1/orgs/{org_id}/domains/{domain_id}/keys"): {"algorithm": "ed25519"},
    ("POST", "/v1/orgs/{org_id}/domains/{domain_id}/keys/{dkim_key_id}/activate"): None,
    ("DELETE", "/v1/orgs/{org_id}/domains/{domain_id}/keys/{dkim_key_id}"): None,
}  # fmt: skip


def _routes() -> list[tuple[str, str]]:
    """Every /v1 operation, from the OpenAPI document (the public list of what is served)."""
    spec = create_app(Settings()).openapi()
    return sorted(
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        if path.startswith("/v1/")
        for method in operations
    )


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{(\w+)\}", value)
        return ids[match.group(1)] if match else value
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _seed_a(client: httpx.AsyncClient, db: Database, a: OrgWithKey) -> dict[str, int]:
    h = a.bearer
    lst = await client.post(f"/v1/orgs/{a.id}/lists", json={"name": A_LIST}, headers=h)
    list_id = lst.json()["id"]
    up = await client.post(
        f"/v1/orgs/{a.id}/contacts",
        json={"contacts": [{"email": A_EMAIL, "first_name": "Alice"}], "list_ids": [list_id]},
        headers=h,
    )
    seg = await client.post(
        f"/v1/orgs/{a.id}/segments",
        json={"name": A_SEGMENT, "filter": {"in_list": list_id}},
        headers=h,
    )
    key = await client.post(f"/v1/orgs/{a.id}/keys", json={"name": "a-extra"}, headers=h)
    connection = await client.post(
        f"/v1/orgs/{a.id}/connections",
        json={
            "name": A_CONNECTION,
            "channel": "email",
            "kind": "smtp",
            "settings": {"host": "mail.alpha.example"},
            "credentials": {"username": "alpha", "password": A_PASSWORD},
        },
        headers=h,
    )
    template = await client.post(
        f"/v1/orgs/{a.id}/templates",
        json={
            "name": A_TEMPLATE,
            "channel": "email",
            "subject": "Hi {{ first_name }}",
            "text": "Secret offer for {{ first_name }}",
        },
        headers=h,
    )
    campaign = await client.post(
        f"/v1/orgs/{a.id}/campaigns",
        json={
            "name": A_CAMPAIGN,
            "channel": "email",
            "template_id": template.json()["id"],
            "from_email": "alpha@alpha.example",
        },
        headers=h,
    )
    broadcast = await client.post(
        f"/v1/orgs/{a.id}/broadcasts",
        json={
            "name": A_BROADCAST,
            "campaign_id": campaign.json()["id"],
            "list_ids": [list_id],
            "draft": True,
        },
        headers=h,
    )
    application = await client.post(
        f"/v1/orgs/{a.id}/applications",
        json={
            "key": "ALPHA1",
            "name": A_APPLICATION,
            "integrations": [{"type": "WHATSAPP", "target_url": "https://wa.me/alpha"}],
        },
        headers=h,
    )
    webhook = await client.post(
        f"/v1/orgs/{a.id}/webhooks",
        json={"url": "https://8.8.8.8/alpha", "event_types": ["delivered"]},
        headers=h,
    )
    suppression = await client.post(
        f"/v1/orgs/{a.id}/suppressions",
        json={"suppressions": [{"channel": "email", "address": A_EMAIL, "note": "Alice"}]},
        headers=h,
    )
    domain = await client.post(
        f"/v1/orgs/{a.id}/domains", json={"name": "alpha.example", "algorithm": "ed25519"},
        headers=h,
    )  # fmt: skip
    return {
        "org_id": a.id,
        "domain_id": domain.json()["id"],
        "dkim_key_id": domain.json()["keys"][0]["id"],
        "suppression_id": suppression.json()["results"][0]["id"],
        "webhook_id": webhook.json()["id"],
        "list_id": list_id,
        "application_id": application.json()["id"],
        "contact_id": up.json()["results"][0]["id"],
        "segment_id": seg.json()["id"],
        "key_id": key.json()["id"],
        "template_id": template.json()["id"],
        "connection_id": connection.json()["id"],
        "campaign_id": campaign.json()["id"],
        "broadcast_id": broadcast.json()["id"],
        "number": 1,
        "message_id": await _one_message_of(client, db, a, h),
    }


async def _one_message_of(
    client: httpx.AsyncClient, db: Database, a: OrgWithKey, h: dict[str, str]
) -> int:
    """Org A sends one message through the sink, so there is a message to try to read."""
    template = await client.post(
        f"/v1/orgs/{a.id}/templates",
        json={"name": "one", "channel": "email", "subject": "s", "text": "Secret offer"},
        headers=h,
    )
    campaign = await client.post(
        f"/v1/orgs/{a.id}/campaigns",
        json={
            "name": "one",
            "channel": "email",
            "template_id": template.json()["id"],
            "from_email": "alpha@alpha.example",
        },
        headers=h,
    )
    await client.post(
        f"/v1/orgs/{a.id}/broadcasts",
        json={"name": "one", "campaign_id": campaign.json()["id"], "send_to_all": True},
        headers=h,
    )
    await Dispatcher(db, renderer=Renderer()).drain()
    listed = await client.get(f"/v1/orgs/{a.id}/messages", headers=h)
    return int(listed.json()["data"][0]["id"])


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    if isinstance(body, str):
        return await client.request(
            method, path, content=body.encode(), headers={**headers, "Content-Type": "text/csv"}
        )
    return await client.request(method, path, json=body, headers=headers)


def _leaks(response: httpx.Response) -> bool:
    secrets = (
        A_EMAIL,
        A_LIST,
        A_SEGMENT,
        A_TEMPLATE,
        A_CAMPAIGN,
        A_BROADCAST,
        A_CONNECTION,
        A_PASSWORD,
        A_APPLICATION,
        "Alice",
        "Secret offer",
    )
    return any(secret in response.text for secret in secrets)


async def test_every_route_is_covered() -> None:
    routes = set(_routes())
    assert len(routes) >= len(BODIES)  # the walk must see the routes, not an empty list
    missing = routes - set(BODIES)
    assert not missing, f"add these routes to BODIES so isolation covers them: {sorted(missing)}"


async def test_org_b_cannot_read_or_change_org_a(client: httpx.AsyncClient, db: Database) -> None:
    a = await make_org(db, "Alpha")
    b = await make_org(db, "Bravo")
    ids_a = await _seed_a(client, db, a)
    ids_b_path = {**ids_a, "org_id": b.id}

    for method, template in _routes():
        body = BODIES[(method, template)]
        # 1. Org A's path with org B's key: forbidden before anything is looked up.
        response = await _call(
            client, method, template.format(**ids_a), _fill(body, ids_a), b.bearer
        )
        assert response.status_code == 403, (method, template, response.text)
        assert not _leaks(response), (method, template)

        # 2. Org B's own path naming org A's objects: they do not exist for B.
        response = await _call(
            client, method, template.format(**ids_b_path), _fill(body, ids_a), b.bearer
        )
        assert response.status_code < 500, (method, template, response.text)
        names_a_object = "_id}" in template.removeprefix("/v1/orgs/{org_id}")
        if names_a_object:
            assert response.status_code == 404, (method, template, response.text)
        assert not _leaks(response), (method, template, response.text)

    # Org A is exactly as it was.
    h = a.bearer
    contact = (
        await client.get(f"/v1/orgs/{a.id}/contacts/{ids_a['contact_id']}", headers=h)
    ).json()
    assert (contact["email"], contact["first_name"], contact["erased_at"]) == (
        A_EMAIL,
        "Alice",
        None,
    )
    lst = (await client.get(f"/v1/orgs/{a.id}/lists/{ids_a['list_id']}", headers=h)).json()
    assert (lst["name"], lst["contacts_count"]) == (A_LIST, 1)
    seg = (await client.get(f"/v1/orgs/{a.id}/segments/{ids_a['segment_id']}", headers=h)).json()
    assert (seg["name"], seg["contacts_count"]) == (A_SEGMENT, 1)
    org = (await client.get(f"/v1/orgs/{a.id}", headers=h)).json()
    assert org["name"] == "Alpha"
    keys = (await client.get(f"/v1/orgs/{a.id}/keys", headers=h)).json()
    assert [k["revoked_at"] for k in keys] == [None, None]
    assert [k["name"] for k in keys] == ["first key", "a-extra"]
    template = f"/v1/orgs/{a.id}/templates/{ids_a['template_id']}"
    assert (await client.get(template, headers=h)).json()["version"] == 1
    campaign = (
        await client.get(f"/v1/orgs/{a.id}/campaigns/{ids_a['campaign_id']}", headers=h)
    ).json()
    assert campaign["from_email"] == "alpha@alpha.example"
    connection = f"/v1/orgs/{a.id}/connections/{ids_a['connection_id']}"
    assert (await client.get(connection, headers=h)).status_code == 200
    domain = f"/v1/orgs/{a.id}/domains/{ids_a['domain_id']}"
    assert [k["status"] for k in (await client.get(domain, headers=h)).json()["keys"]] == ["active"]
    # Org A's audit log holds A's own actions only: nothing B tried was recorded there.
    audit = (await client.get(f"/v1/orgs/{a.id}/audit?limit=500", headers=h)).json()["data"]
    assert audit, "org A's seeding is audited"
    assert {entry["key_id"] for entry in audit} == {keys[0]["id"]}
