"""`Idempotency-Key` on every POST that creates or sends, native and dialect: the same key
twice makes one object and answers the first answer again; another body is refused; a
request in flight is 409; keys are per org and per route; they expire; a thousand
concurrent requests with one key do the work once.

The routes come from the app itself: a POST that is neither keyed (and walked here) nor
listed as idempotent by nature fails `test_every_post_is_keyed_or_idempotent_by_nature`.
"""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import func, select

from tests.support.factories import OrgWithKey, make_org
from tidings.api import health
from tidings.app import V1, create_app
from tidings.bounces import routes as bounces
from tidings.compat import infobip, invent, octopush, walr
from tidings.db.engine import Database
from tidings.idempotency import service as idempotency
from tidings.idempotency.http import IDEMPOTENT, IdempotentRoute
from tidings.idempotency.models import IdempotencyKey
from tidings.keys.models import ApiKey
from tidings.links import routes as links
from tidings.monitoring import routes as monitoring
from tidings.reports import routes as reports
from tidings.schema import Base
from tidings.settings import Settings
from tidings.suppressions import routes as suppressions

# POSTs that take no Idempotency-Key, and why a retry of each is safe without one.
BY_NATURE: dict[tuple[str, str], str] = {
    ("POST", "/v1/orgs/{org_id}/contacts/{contact_id}/erase"): "erasing again changes nothing",
    ("POST", "/v1/orgs/{org_id}/lists/{list_id}/members"): "membership is a set",
    ("POST", "/v1/orgs/{org_id}/lists/{list_id}/members/remove"): "membership is a set",
    ("POST", "/v1/orgs/{org_id}/segments/count"): "reads only",
    ("POST", "/v1/orgs/{org_id}/templates/{template_id}/preview"): "reads only",
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/estimate"): "reads only",
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/pause"): "a state reached once",
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/resume"): "a state reached once",
    ("POST", "/v1/orgs/{org_id}/broadcasts/{broadcast_id}/cancel"): "a state reached once",
    (
        "POST",
        "/v1/orgs/{org_id}/domains/{domain_id}/keys/{dkim_key_id}/activate",
    ): "a state reached once",
    ("POST", "/u/{token}"): "unsubscribing again changes nothing (no API key)",
    ("POST", "/p/{token}"): "a play is counted once per message (no API key)",
    ("POST", "/inbound/sms/{connection_id}/{token}"): "a provider's callback, by its id",
    ("POST", "/reports/{connection_id}/infobip/{token}"): "a provider's report, by its id",
    ("POST", "/reports/{connection_id}/twilio"): "a provider's report, by its id",
    ("POST", "/reports/{connection_id}/json"): "a provider's report, by its id",
    ("POST", "/bounces/{connection_id}/{token}"): "a bounce report, by its Message-ID",
}

CSV = "email,first_name\nimported@example.com,Imported\n"
INFOBIP = "/compat/infobip/omnichat/1/applications/APP1/integrations/FACEBOOK/invite"

# (path, body, the table the first call adds rows to). "{name}" is an id made by `_setup`,
# or captured from an earlier step's answer under the name after "->".
WALK: list[tuple[str, Any, str | None]] = [
    ("/v1/orgs/{org_id}/keys", {"name": "extra"}, "api_keys"),
    ("/v1/orgs/{org_id}/contacts",
     {"contacts": [{"email": "bob@example.com", "first_name": "Bob"}]}, "contacts"),
    ("/v1/orgs/{org_id}/contacts/import", CSV, "contacts"),
    ("/v1/orgs/{org_id}/lists", {"name": "keyed"}, "lists"),
    ("/v1/orgs/{org_id}/segments", {"name": "s", "filter": {"in_list": "{list_id}"}},
     "segments"),
    ("/v1/orgs/{org_id}/templates", {"name": "keyed", "channel": "email", "subject": "Hi",
                                     "text": "v1"}, "templates"),
    ("/v1/orgs/{org_id}/templates/{template_id}/versions/1/restore", None,
     "template_versions"),
    ("/v1/orgs/{org_id}/connections",
     {"name": "relay", "channel": "email", "kind": "smtp",
      "settings": {"host": "smtp.example.com"}}, "connections"),
    ("/v1/orgs/{org_id}/campaigns",
     {"name": "keyed", "channel": "email", "template_id": "{template_id}",
      "from_email": "news@example.com"}, "campaigns"),
    ("/v1/orgs/{org_id}/campaigns/{campaign_id}/invites",
     {"recipients": [{"variables": {"email": "ivy@example.com", "store": "Leeds"}}]},
     "messages"),
    ("/v1/orgs/{org_id}/broadcasts",
     {"name": "b", "campaign_id": "{campaign_id}", "list_ids": ["{list_id}"]}, "broadcasts"),
    ("/v1/orgs/{org_id}/broadcasts",  # -> draft_id
     {"name": "draft", "campaign_id": "{campaign_id}", "list_ids": ["{list_id}"],
      "draft": True}, "broadcasts"),
    ("/v1/orgs/{org_id}/broadcasts/{draft_id}/send", None, None),  # moves a status
    ("/v1/orgs/{org_id}/messages",
     {"campaign_id": "{campaign_id}", "to": {"email": "one@example.com"}}, "messages"),
    ("/v1/orgs/{org_id}/applications", {"key": "APP2", "name": "app"}, "applications"),
    ("/v1/orgs/{org_id}/credits/top-ups", {"amount": 1}, "credit_entries"),
    ("/v1/orgs/{org_id}/suppressions",
     {"suppressions": [{"channel": "email", "address": "gone@example.com"}]}, "suppressions"),
    ("/v1/orgs/{org_id}/webhooks",
     {"url": "https://8.8.8.8/hook", "event_types": ["delivered"]}, "webhook_endpoints"),
    ("/v1/orgs/{org_id}/webhooks/{webhook_id}/test", None, "webhook_deliveries"),
    ("/v1/orgs/{org_id}/domains", {"name": "example.com", "algorithm": "ed25519"},
     "sending_domains"),
    ("/v1/orgs/{org_id}/domains/{domain_id}/keys", {"algorithm": "ed25519"}, "dkim_keys"),
    ("/compat/walr/projects/p-1/surveys/s-1/invites",
     {"campaignId": "nps", "recipients": [{"variables": {"email": "w@example.com"}}]},
     "messages"),
    ("/compat/octopush/email/campaign/send",
     {"recipients": [{"email": "o@example.com"}], "subject": "Hi", "text": "Hello",
      "email_from": "news@example.com"}, "messages"),
    ("/compat/invent/orgs/{org_id}/broadcasts",
     {"name": "inv", "segment_ids": ["{segment_id}"], "campaign_id": "{campaign_id}"},
     "broadcasts"),
    (INFOBIP, {"to": "41793026727", "linkPlaceholder": "<link>", "message": "Go <link>"},
     "messages"),
]  # fmt: skip


def _route_of(path: str) -> str:
    """The route's template: ids and literal values back to their `{name}`."""
    return re.sub(r"\{(\w+)\}", r"{\1}", path)


def _keyed_routes() -> dict[tuple[str, str], APIRoute]:
    routers = [
        *((m.router, "/v1") for m in V1),
        *((d.router, "") for d in (walr, octopush, invent, infobip)),
        *((r, "") for r in (links.router, suppressions.public, reports.public, bounces.public)),
        *((r, "") for r in (health.router, monitoring.router)),
    ]
    return {
        ("POST", prefix + route.path): route
        for router, prefix in routers
        for route in router.routes
        if isinstance(route, APIRoute) and "POST" in route.methods
    }


def test_every_post_is_keyed_or_idempotent_by_nature() -> None:
    routes = _keyed_routes()
    assert len(routes) > 30  # the test must see the routes, not an empty set
    keyed = {k for k, r in routes.items() if any(d is IDEMPOTENT for d in r.dependencies)}
    unkeyed = set(routes) - keyed - set(BY_NATURE)
    assert not unkeyed, f"give these POSTs IDEMPOTENT, or say why not: {sorted(unkeyed)}"
    assert not keyed & set(BY_NATURE)
    assert set(BY_NATURE) <= set(routes), sorted(set(BY_NATURE) - set(routes))
    for key in keyed:  # the dependency claims; only the route class stores the answer
        assert isinstance(routes[key], IdempotentRoute), key
    walked = {_template_of(path) for path, *_ in WALK}
    assert {path for _, path in keyed} == walked


def test_the_openapi_document_shows_the_header_and_its_409_on_each_keyed_route() -> None:
    document = create_app(Settings()).openapi()
    keyed = [k for k, r in _keyed_routes().items() if any(d is IDEMPOTENT for d in r.dependencies)]
    for method, path in keyed:
        operation = document["paths"][path][method.lower()]
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        assert "Idempotency-Key" in headers, path
        assert "409" in operation["responses"], path
    for method, path in BY_NATURE:
        operation = document["paths"][path][method.lower()]
        names = {p["name"] for p in operation.get("parameters", [])}
        assert "Idempotency-Key" not in names, path


def _template_of(walk_path: str) -> str:
    path = walk_path.replace("/versions/1/", "/versions/{number}/")
    path = path.replace("{draft_id}", "{broadcast_id}")
    path = path.replace("/projects/p-1/surveys/s-1/", "/projects/{projectId}/surveys/{surveyId}/")
    return path.replace(
        "/applications/APP1/integrations/FACEBOOK/",
        ("/applications/{applicationKey}/integrations/{integrationType}/"),
    )


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{(\w+)\}", value)
        return ids[match.group(1)] if match else value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


async def _setup(client: httpx.AsyncClient, org: OrgWithKey) -> dict[str, int]:
    """What the walk's routes need: a list with a contact, a segment, a template and an
    invite campaign, an application with an integration, a webhook."""
    base, h = f"/v1/orgs/{org.id}", org.bearer

    async def made(path: str, body: Any) -> int:
        response = await client.post(f"{base}{path}", headers=h, json=body)
        assert response.status_code in (200, 201), response.text
        return int(response.json()["id"])

    list_id = await made("/lists", {"name": "panel"})
    upserted = await client.post(
        f"{base}/contacts",
        headers=h,
        json={"contacts": [{"email": "ada@example.com"}], "list_ids": [list_id]},
    )
    assert upserted.status_code == 200, upserted.text
    template_id = await made(
        "/templates",
        {"name": "t", "channel": "email", "subject": "Hi", "text": "Go {{ invite_link }}"},
    )
    changed = await client.patch(  # version 2, so that restoring version 1 makes a third
        f"{base}/templates/{template_id}", headers=h, json={"text": "Now {{ invite_link }}"}
    )
    assert changed.status_code == 200, changed.text
    campaign = {
        "name": "nps", "channel": "email", "template_id": template_id,
        "from_email": "research@example.com", "external_id": "nps", "project_ref": "p-1",
        "survey_ref": "s-1", "invite_url": "https://survey.example/s-1",
    }  # fmt: skip
    await made(
        "/applications",
        {"key": "APP1", "name": "app", "sms_sender": "Foo",
         "integrations": [{"type": "FACEBOOK", "target_url": "https://m.me/foo"}]},
    )  # fmt: skip
    return {
        "org_id": org.id,
        "list_id": list_id,
        "template_id": template_id,
        "campaign_id": await made("/campaigns", campaign),
        "segment_id": await made("/segments", {"name": "p", "filter": {"in_list": list_id}}),
        "webhook_id": await made(
            "/webhooks", {"url": "https://8.8.8.8/h", "event_types": ["delivered"]}
        ),
        "domain_id": await made("/domains", {"name": "setup.example", "algorithm": "ed25519"}),
    }


async def _post(
    client: httpx.AsyncClient, org: OrgWithKey, path: str, body: Any, key: str
) -> httpx.Response:
    headers = {**org.bearer, "Idempotency-Key": key}
    if isinstance(body, str):
        headers["Content-Type"] = "text/csv"
        return await client.post(path, content=body.encode(), headers=headers)
    return await client.post(path, json=body, headers=headers)


async def _counts(db: Database) -> dict[str, int]:
    """Rows in every table, read in one statement."""
    tables = Base.metadata.sorted_tables
    query = select(
        *(select(func.count()).select_from(t).scalar_subquery().label(t.name) for t in tables)
    )
    async with db.session() as session:
        row = (await session.execute(query)).one()
    return dict(row._mapping)


def _other(body: Any) -> Any:
    """Another request on the same route: another body."""
    if isinstance(body, str):
        return body + "other@example.com,Other\n"
    if body is None:
        return {"other": True}
    return {**body, "other": True}


def _names_the_key(response: httpx.Response, path: str) -> None:
    text = response.text
    if path.startswith("/v1/"):
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:tidings:problem:idempotency-key-reused"
        assert response.json()["errors"][0]["field"] == "Idempotency-Key"
    elif "infobip" in path:
        assert "IDEMPOTENCY_KEY_REUSED" in text, text
    elif "octopush" in path:
        assert response.json()["code"] == 908, text
    else:
        assert "Idempotency-Key" in text, text


async def test_the_same_key_twice_on_every_creating_route_does_it_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    ids = await _setup(client, org)
    used: set[str] = set()
    for path, raw_body, table in WALK:
        url, body = _fill(path, ids), _fill(raw_body, ids)
        before = await _counts(db)
        # One key for every route (a key is scoped to its route, so each is a first use),
        # another for a route walked twice.
        key = "retry-1" if url not in used else f"retry-{len(used)}"
        used.add(url)
        first = await _post(client, org, url, body, key)
        assert first.status_code < 300, (path, first.text)
        assert "idempotent-replayed" not in first.headers
        made = await _counts(db)
        assert table is None or made[table] > before[table], (path, table)
        if raw_body is not None and "draft" in raw_body:
            ids["draft_id"] = first.json()["id"]

        again = await _post(client, org, url, body, key)
        assert (again.status_code, again.json()) == (first.status_code, first.json()), path
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert await _counts(db) == made, path  # nothing written at all

        other = await _post(client, org, url, _other(body), key)
        assert other.status_code == 422, (path, other.text)
        _names_the_key(other, path)
        assert await _counts(db) == made, path


async def test_keys_are_per_org(client: httpx.AsyncClient, db: Database) -> None:
    ours, theirs = await make_org(db, "Ours"), await make_org(db, "Theirs")
    for org in (ours, theirs):
        made = await _post(client, org, f"/v1/orgs/{org.id}/lists", {"name": "l"}, "k")
        assert made.status_code == 201, made.text
        assert "idempotent-replayed" not in made.headers
    async with db.session() as session:
        orgs = set(await session.scalars(select(IdempotencyKey.org_id)))
    assert orgs == {ours.id, theirs.id}


async def test_a_stored_answer_is_only_for_the_api_key_that_asked(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    path, body = f"/v1/orgs/{org.id}/keys", {"name": "reader", "scopes": ["read"]}
    made = await _post(client, org, path, body, "k")
    assert made.status_code == 201, made.text
    reader = OrgWithKey(org.id, org.login, made.json()["api_key"])

    # The reader lacks `manage`: the answer holding a secret is not given to it again.
    peek = await _post(client, reader, path, body, "k")
    assert peek.status_code == 422
    assert made.json()["api_key"] not in peek.text
    # Nor does its refused request (403) hold a key that the manager then uses.
    refused = await _post(client, reader, path, {"name": "mine"}, "fresh")
    assert refused.status_code == 403
    used = await _post(client, org, path, {"name": "mine"}, "fresh")
    assert used.status_code == 201, used.text
    assert "idempotent-replayed" not in used.headers


async def _hold(db: Database, org: OrgWithKey, path: str, body: Any, key: str) -> None:
    """Claim the key as another request would, still working on it."""
    async with db.session() as session:
        key_id = await session.scalar(select(ApiKey.id).where(ApiKey.org_id == org.id))
    fingerprint = idempotency.request_hash("POST", path, json.dumps(body).encode(), caller=key_id)
    async with db.transaction() as session:
        claimed = await idempotency.begin(
            session,
            org_id=org.id,
            route=idempotency.route_digest("POST", path),
            key=key,
            fingerprint=fingerprint,
            keep_for=timedelta(hours=24),
            in_flight_for=timedelta(minutes=5),
        )
    assert isinstance(claimed, idempotency.Claim)


async def _age(db: Database, by: timedelta) -> None:
    """Every key claimed `by` earlier than it was."""
    async with db.transaction() as session:
        for row in await session.scalars(select(IdempotencyKey)):
            row.created_at -= by


async def test_in_flight_is_409_and_an_abandoned_key_is_taken_over(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    path, body = f"/v1/orgs/{org.id}/lists", {"name": "l"}
    await _hold(db, org, path, body, "k")
    busy = await _post(client, org, path, body, "k")
    assert busy.status_code == 409
    assert busy.headers["content-type"] == "application/problem+json"
    assert (await _counts(db))["lists"] == 0

    # That request died without committing: past the in-flight limit a retry runs it.
    await _age(db, timedelta(minutes=6))
    taken = await _post(client, org, path, body, "k")
    assert taken.status_code == 201, taken.text
    replay = await _post(client, org, path, body, "k")
    assert replay.json() == taken.json()
    assert (await _counts(db))["lists"] == 1


async def test_a_dialect_answers_in_flight_in_its_own_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    path = "/compat/octopush/email/campaign/send"
    body = {"recipients": [{"email": "o@example.com"}], "text": "Hi", "email_from": "n@example.com"}
    await _hold(db, org, path, body, "k")
    busy = await client.post(path, json=body, headers={**org.header_pair, "Idempotency-Key": "k"})
    assert busy.status_code == 409
    assert busy.json()["code"] == 907


async def test_a_key_is_forgotten_after_its_time(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    path = f"/v1/orgs/{org.id}/credits/top-ups"
    first = await _post(client, org, path, {"amount": 1}, "k")
    await _age(db, timedelta(hours=23))
    kept = await _post(client, org, path, {"amount": 1}, "k")
    assert kept.headers["idempotent-replayed"] == "true"
    await _age(db, timedelta(hours=2))  # 25 h: past TIDINGS_IDEMPOTENCY_KEEP_HOURS
    fresh = await _post(client, org, path, {"amount": 1}, "k")
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers
    assert fresh.json()["id"] != first.json()["id"]
    async with db.session() as session:
        assert await session.scalar(select(func.count()).select_from(IdempotencyKey)) == 1


async def test_a_refusal_is_answered_again_in_the_dialect_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    path = "/compat/walr/projects/p-1/surveys/s-1/invites"
    body = {"campaignId": "nope", "recipients": []}
    first = await _post(client, org, path, body, "k")
    again = await _post(client, org, path, body, "k")
    assert (first.status_code, again.status_code) == (404, 404)
    assert again.json() == first.json() == {"error": first.json()["error"], "statusCode": 404}
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["content-type"] == "application/json"


async def test_a_request_that_never_ran_frees_its_key(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    path = f"/v1/orgs/{org.id}/lists"
    malformed = await _post(client, org, path, {"name": ""}, "k")  # refused before any work
    assert malformed.status_code == 422
    fixed = await _post(client, org, path, {"name": "l"}, "k")
    assert fixed.status_code == 201, fixed.text
    bad_key = await _post(client, org, path, {"name": "m"}, "x" * 256)
    assert bad_key.status_code == 422
    assert bad_key.json()["errors"][0]["field"] == "Idempotency-Key"


async def test_a_thousand_concurrent_retries_top_up_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    path = f"/v1/orgs/{org.id}/credits/top-ups"
    answers = await asyncio.gather(
        *(_post(client, org, path, {"amount": 2.5}, "pay-1") for _ in range(1000))
    )
    statuses = {a.status_code for a in answers}
    assert statuses <= {201, 409}, statuses
    created = [a for a in answers if a.status_code == 201]
    assert len({a.json()["id"] for a in created}) == 1
    assert len([a for a in created if "idempotent-replayed" not in a.headers]) == 1
    counts = await _counts(db)
    assert counts["credit_entries"] == 1
    balance = await client.get(f"/v1/orgs/{org.id}/credits", headers=org.bearer)
    assert balance.json()["balance"] == 2.5, balance.text
    late = await _post(client, org, path, {"amount": 2.5}, "pay-1")
    assert late.json() == created[0].json()


async def test_a_thousand_concurrent_retries_of_a_dialect_send_invite_once(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _setup(client, org)
    path = "/compat/walr/projects/p-1/surveys/s-1/invites"
    body = {"campaignId": "nps", "recipients": [{"variables": {"email": "w@example.com"}}]}
    before = await _counts(db)
    answers = await asyncio.gather(
        *(_post(client, org, path, body, "batch-1") for _ in range(1000))
    )
    statuses = {a.status_code for a in answers}
    assert statuses <= {202, 409}, statuses
    assert len({a.json()["batchId"] for a in answers if a.status_code == 202}) == 1
    after = await _counts(db)
    assert after["broadcasts"] == before["broadcasts"] + 1
    assert after["messages"] == before["messages"] + 1
    busy = [a for a in answers if a.status_code == 409]
    assert all(a.json()["statusCode"] == 409 for a in busy)  # in walr's own shape
