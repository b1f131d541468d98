"""Every route that takes a `manage` key is audited: one entry per action, with the key,
the time, the action and its target, in the action's own transaction.

The routes come from the app itself (those whose dependencies include the manage scope):
a new manage route that is not in WALK fails here until it is audited and walked.
"""

from __future__ import annotations

import re
import typing
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi.routing import APIRoute

from tests.support.factories import OrgWithKey, make_org
from tidings.api.deps import ManageKey
from tidings.app import V1
from tidings.db.engine import Database

# Reading the log itself is no action to record (it holds no one's personal data).
NOT_ACTIONS = {("GET", "/v1/orgs/{org_id}/audit")}

# Actions on many rows at once name no one target.
BATCHES = {"contact.upsert", "contact.import", "suppression.add", "prices.set"}

CSV = "email,first_name\nimported@example.com,Imported\n"

# In order: (method, path, body, the action recorded, the id the step names (captured)).
# "{name}" in a path or body is an id captured earlier, under the name given last.
WALK: list[tuple[str, str, Any, str, str | None]] = [
    ("PATCH", "/v1/orgs/{org_id}", {"name": "Renamed"}, "org.update", None),
    ("POST", "/v1/orgs/{org_id}/keys", {"name": "extra"}, "key.create", "key_id"),
    ("DELETE", "/v1/orgs/{org_id}/keys/{key_id}", None, "key.revoke", None),
    ("POST", "/v1/orgs/{org_id}/lists", {"name": "l1"}, "list.create", "list_id"),
    ("PATCH", "/v1/orgs/{org_id}/lists/{list_id}", {"name": "l2"}, "list.update", None),
    ("POST", "/v1/orgs/{org_id}/contacts",
     {"contacts": [{"email": "bob@example.com", "first_name": "Bob"}]},
     "contact.upsert", "contact_id"),
    ("POST", "/v1/orgs/{org_id}/contacts/import", CSV, "contact.import", None),
    ("POST", "/v1/orgs/{org_id}/lists/{list_id}/members", {"contact_ids": ["{contact_id}"]},
     "list.members_add", None),
    ("POST", "/v1/orgs/{org_id}/lists/{list_id}/members/remove",
     {"contact_ids": ["{contact_id}"]}, "list.members_remove", None),
    ("POST", "/v1/orgs/{org_id}/segments", {"name": "s", "filter": {"in_list": "{list_id}"}},
     "segment.create", "segment_id"),
    ("PATCH", "/v1/orgs/{org_id}/segments/{segment_id}", {"name": "s2"}, "segment.update", None),
    ("DELETE", "/v1/orgs/{org_id}/segments/{segment_id}", None, "segment.delete", None),
    ("DELETE", "/v1/orgs/{org_id}/lists/{list_id}", None, "list.delete", None),
    ("POST", "/v1/orgs/{org_id}/templates",
     {"name": "t", "channel": "email", "subject": "Hi", "text": "v1"},
     "template.create", "template_id"),
    ("PATCH", "/v1/orgs/{org_id}/templates/{template_id}", {"text": "v2"},
     "template.update", None),
    ("POST", "/v1/orgs/{org_id}/templates/{template_id}/versions/{number}/restore", None,
     "template.restore", None),
    ("POST", "/v1/orgs/{org_id}/connections",
     {"name": "relay", "channel": "email", "kind": "smtp",
      "settings": {"host": "smtp.example.com"},
      "credentials": {"username": "u", "password": "first-password"}},
     "connection.create", "connection_id"),
    ("PATCH", "/v1/orgs/{org_id}/connections/{connection_id}",
     {"credentials": {"username": "u", "password": "second-password"}},
     "connection.update", None),
    ("POST", "/v1/orgs/{org_id}/campaigns",
     {"name": "c", "channel": "email", "template_id": "{template_id}",
      "from_email": "news@example.com", "connection_id": "{connection_id}"},
     "campaign.create", "campaign_id"),
    ("PATCH", "/v1/orgs/{org_id}/campaigns/{campaign_id}", {"from_email": "hi@example.com"},
     "campaign.update", None),
    ("DELETE", "/v1/orgs/{org_id}/campaigns/{campaign_id}", None, "campaign.delete", None),
    ("DELETE", "/v1/orgs/{org_id}/connections/{connection_id}", None,
     "connection.delete", None),
    ("DELETE", "/v1/orgs/{org_id}/templates/{template_id}", None, "template.delete", None),
    ("POST", "/v1/orgs/{org_id}/applications", {"key": "APP1", "name": "app"},
     "application.create", "application_id"),
    ("PUT", "/v1/orgs/{org_id}/applications/{application_id}/integrations",
     {"type": "FACEBOOK", "target_url": "https://example.com/fb"},
     "application.integration_put", None),
    ("DELETE", "/v1/orgs/{org_id}/applications/{application_id}", None,
     "application.delete", None),
    ("POST", "/v1/orgs/{org_id}/credits/top-ups", {"amount": 10}, "credits.top_up", None),
    ("PUT", "/v1/orgs/{org_id}/prices", {"prices": [{"channel": "email", "amount": 1}]},
     "prices.set", None),
    ("POST", "/v1/orgs/{org_id}/suppressions",
     {"suppressions": [{"channel": "email", "address": "gone@example.com"}]},
     "suppression.add", "suppression_id"),
    ("DELETE", "/v1/orgs/{org_id}/suppressions/{suppression_id}", None,
     "suppression.remove", None),
    ("POST", "/v1/orgs/{org_id}/suppressions",
     {"suppressions": [{"channel": "email", "address": "also@example.com"}]},
     "suppression.add", None),
    ("DELETE", "/v1/orgs/{org_id}/suppressions?channel=email&address=also@example.com", None,
     "suppression.remove", None),
    ("POST", "/v1/orgs/{org_id}/webhooks",
     {"url": "https://8.8.8.8/hook", "event_types": ["delivered"]},
     "webhook.create", "webhook_id"),
    ("POST", "/v1/orgs/{org_id}/webhooks/{webhook_id}/test", None, "webhook.test", None),
    ("PATCH", "/v1/orgs/{org_id}/webhooks/{webhook_id}", {"enabled": False},
     "webhook.update", None),
    ("DELETE", "/v1/orgs/{org_id}/webhooks/{webhook_id}", None, "webhook.delete", None),
    ("POST", "/v1/orgs/{org_id}/domains", {"name": "example.com", "algorithm": "ed25519"},
     "domain.create", "domain_id"),
    ("POST", "/v1/orgs/{org_id}/domains/{domain_id}/keys", {"algorithm": "ed25519"},
     "domain.key_create", "dkim_key_id"),
    ("POST", "/v1/orgs/{org_id}/domains/{domain_id}/keys/{dkim_key_id}/activate", None,
     "domain.key_activate", None),
    ("DELETE", "/v1/orgs/{org_id}/domains/{domain_id}/keys/{dkim_key_id}", None,
     "domain.key_delete", None),
    ("DELETE", "/v1/orgs/{org_id}/domains/{domain_id}", None, "domain.delete", None),
    ("GET", "/v1/orgs/{org_id}/contacts/{contact_id}/export", None, "contact.export", None),
    ("POST", "/v1/orgs/{org_id}/contacts/{contact_id}/erase", None, "contact.erase", None),
]  # fmt: skip


def _manage_routes() -> set[tuple[str, str]]:
    """Every operation whose dependencies include the `manage` scope check."""
    manage = typing.get_args(ManageKey)[1].dependency

    def needs_manage(dependant: Any) -> bool:
        return any(d.call is manage or needs_manage(d) for d in dependant.dependencies)

    return {
        (method, f"/v1{route.path}")
        for package in V1
        for route in package.router.routes
        if isinstance(route, APIRoute) and needs_manage(route.dependant)
        for method in route.methods
    }


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{(\w+)\}", value)
        return ids[match.group(1)] if match else value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _captured(body: Any) -> int:
    if "results" in body:  # a batch's report: its first row
        return int(body["results"][0]["id"])
    return int(body["id"])


async def _newest(client: httpx.AsyncClient, org: OrgWithKey, after: int) -> list[Any]:
    response = await client.get(f"/v1/orgs/{org.id}/audit?limit=10", headers=org.bearer)
    assert response.status_code == 200, response.text
    return [e for e in response.json()["data"] if e["id"] > after]


def test_every_manage_route_is_walked() -> None:
    routes = _manage_routes()
    assert len(routes) > 30  # the walk must see the routes, not an empty set
    walked = {(method, path.partition("?")[0]) for method, path, *_ in WALK}
    missing = routes - walked - NOT_ACTIONS
    assert not missing, f"audit these manage routes and add them to WALK: {sorted(missing)}"
    assert walked <= routes, sorted(walked - routes)


async def test_each_manage_action_writes_one_entry(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    keys = (await client.get(f"/v1/orgs/{org.id}/keys", headers=org.bearer)).json()
    key_id = keys[0]["id"]
    ids: dict[str, int] = {"org_id": org.id, "number": 1}
    last = 0
    for method, path, body, action, capture in WALK:
        url = _fill(path, ids)
        started = datetime.now(UTC)
        if isinstance(body, str):
            headers = {**org.bearer, "Content-Type": "text/csv"}
            response = await client.request(method, url, content=body.encode(), headers=headers)
        else:
            response = await client.request(method, url, json=_fill(body, ids), headers=org.bearer)
        assert response.status_code < 300, (method, path, response.text)
        if capture:
            ids[capture] = _captured(response.json())

        entries = await _newest(client, org, last)
        assert [e["action"] for e in entries] == [action], (method, path, entries)
        entry = entries[0]
        assert (entry["actor"], entry["key_id"]) == (f"key {key_id}", key_id)
        assert entry["target_kind"] == action.partition(".")[0]
        in_path = [
            name
            for name in re.findall(r"\{(\w+_id)\}", path)
            if name != "org_id" or action == "org.update"
        ]
        named = capture or (in_path[-1] if in_path else None)
        if action in BATCHES:
            assert entry["target_id"] is None, entry
        elif named:
            assert entry["target_id"] == ids[named], entry
        at = datetime.fromisoformat(entry["at"])
        assert started - timedelta(seconds=5) <= at <= datetime.now(UTC) + timedelta(seconds=5)
        last = entry["id"]


async def test_a_refused_action_leaves_no_entry(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    base = f"/v1/orgs/{org.id}"
    made = await client.post(f"{base}/lists", json={"name": "taken"}, headers=org.bearer)
    assert made.status_code == 201
    again = await client.post(f"{base}/lists", json={"name": "taken"}, headers=org.bearer)
    assert again.status_code == 422
    missing = await client.delete(f"{base}/campaigns/999", headers=org.bearer)
    assert missing.status_code == 404
    entries = (await client.get(f"{base}/audit", headers=org.bearer)).json()["data"]
    assert [e["action"] for e in entries] == ["list.create"]
