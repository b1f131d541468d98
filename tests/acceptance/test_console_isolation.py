"""The two-org walk through the console: a member of org B, signed in, against every
console route and org A's objects. Every page answers without a server error and shows
nothing of A; a path naming one of A's objects answers 404; A is unchanged after.

The routes come from the app itself (every `ConsoleRoute`), so a page added later is
walked too: a route whose path names an id not in `_ids`, or that takes a form without an
entry in FORMS, fails `test_every_console_route_is_walked` until it is added here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
from fastapi.routing import APIRoute
from sqlalchemy import select
from starlette.routing import BaseRoute

from tests.acceptance.test_isolation import _leaks, _seed_a
from tests.support.console import add_member, signed_in
from tests.support.factories import make_org
from tidings.app import create_app
from tidings.audit.models import AuditEntry
from tidings.channels.models import SinkMessage
from tidings.console.routing import ConsoleRoute
from tidings.contacts import imports
from tidings.db.engine import Database
from tidings.members.models import Member
from tidings.members.roles import Role
from tidings.settings import Settings

SIGNED_OUT = {("GET", "/login"), ("POST", "/login")}
"""The door itself, reached without a session: tested in test_console_sign_in.py."""
LAST = {("POST", "/logout")}
"""Walked last: it ends the walking member's session."""

# (method, path template) → form fields (beside csrf_token); "{x_id}" is filled with A's id.
FORMS: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/switch-org"): {"org_id": "{org_id}"},
    ("POST", "/logout"): {},
    ("POST", "/compose"): {"name": "x", "campaign_id": "{campaign_id}", "send_to_all": "true"},
    ("POST", "/compose/estimate"): {"campaign_id": "{campaign_id}", "send_to_all": "true"},
    ("POST", "/compose/test"): {"campaign_id": "{campaign_id}", "test_addresses": "x@example.com"},
    ("POST", "/contacts/{contact_id}/erase"): {"confirm": "yes"},
    ("POST", "/contacts/import"): {},
    ("POST", "/lists"): {"name": "x"},
    ("POST", "/lists/{list_id}/members"): {"address": "a@example.com"},
    ("POST", "/suppressions"): {"channel": "email", "address": "x@example.com"},
    ("POST", "/keys"): {"name": "k", "scope": ["read"]},
    ("POST", "/credits/top-ups"): {"amount": "1"},
    ("POST", "/webhooks"): {"url": "https://8.8.8.8/", "event_type": ["*"]},
    ("POST", "/webhooks/{webhook_id}/enabled"): {"enabled": "false"},
    ("POST", "/settings"): {"name": "Bravo"},
    ("POST", "/connections"): {"name": "c", "kind": "sink", "channel": "email"},
    ("POST", "/connections/{connection_id}/edit"): {"name": "c", "settings_json": "{}"},
    ("POST", "/campaigns/{campaign_id}/edit"): {"name": "c", "template_id": "{template_id}"},
    ("POST", "/segments/{segment_id}/edit"): {"name": "s", "filter_json": '{"in_list": 1}'},
    ("POST", "/members"): {"email": "walker@bravo.example", "role": "viewer"},
    ("POST", "/members/{member_id}/role"): {"role": "viewer"},
}


def _flat(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The app's routes, through the routers FastAPI includes lazily (`original_router`)."""
    for route in routes:
        included = getattr(route, "original_router", None)
        yield from _flat(included.routes) if included is not None else (route,)


def console_routes() -> list[tuple[str, str, APIRoute]]:
    app = create_app(Settings())
    return sorted(
        ((method, route.path, route) for route in _flat(app.routes)
         if isinstance(route, ConsoleRoute) for method in route.methods or ()),
        key=lambda found: (found[1], found[0]),
    )  # fmt: skip


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _fill(value: Any, ids: dict[str, int]) -> Any:
    if isinstance(value, str):
        match = re.fullmatch(r"\{(\w+)\}", value)
        return ids[match.group(1)] if match else value
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


SEEDED = {"org_id", "suppression_id", "webhook_id", "list_id", "application_id", "contact_id",
          "segment_id", "key_id", "template_id", "connection_id", "campaign_id", "broadcast_id",
          "number", "message_id", "sink_id", "import_id", "member_id"}  # fmt: skip
"""The ids `test_isolation._seed_a` makes in org A, its sink's copy of its message, an
import and a member."""


def test_every_console_route_is_walked() -> None:
    routes = console_routes()
    assert ("GET", "/") in {(method, path) for method, path, _ in routes}
    for method, path, route in routes:
        unknown = set(_params(path)) - SEEDED
        assert not unknown, f"{method} {path}: seed org A's {unknown} for the walk"
        takes_form = route.body_field is not None
        if method != "GET" and (method, path) not in SIGNED_OUT and takes_form:
            assert (method, path) in FORMS, f"{method} {path}: add its form to FORMS"


async def test_a_member_of_org_b_sees_nothing_of_org_a(
    client: httpx.AsyncClient, db: Database
) -> None:
    a = await make_org(db, "Alpha")
    ids_a = await _seed_a(client, db, a)
    async with db.transaction() as session:  # what the sink kept of a message of A's
        kept = SinkMessage(org_id=a.id, channel="email", recipient="a@alpha.example",
                           subject="Secret offer", content="Secret offer")  # fmt: skip
        session.add(kept)
        await session.flush()
        ids_a["sink_id"] = kept.id
        started = await imports.start(session, org_id=a.id, started_by="key 1", total_rows=0)
        ids_a["import_id"] = started.id
    ids_a["member_id"] = (await add_member(db, org_id=a.id, role=Role.OWNER)).id
    b = await make_org(db, "Bravo")
    me = await signed_in(client, db, org=b, role=Role.OWNER)

    walk = [r for r in console_routes() if (r[0], r[1]) not in SIGNED_OUT]
    walk.sort(key=lambda r: (r[0], r[1]) in LAST)
    for method, path, _ in walk:
        url = path.format(**ids_a)
        if method == "GET":
            response = await client.get(url)
        else:
            form = {"csrf_token": me.csrf, **_fill(FORMS.get((method, path), {}), ids_a)}
            response = await client.request(method, url, data=form)
        assert response.status_code < 500, (method, path, response.text)
        if (method, path) not in LAST:  # still signed in: the answer is B's page
            assert not response.headers.get("location", "").startswith("/login"), (method, path)
        assert not _leaks(response), (method, path)
        if _params(path):
            assert response.status_code == 404, (method, path, response.text)

    # Org A is as it was: its audit log holds its own key's actions only.
    async with db.transaction(write=False) as session:
        actors = set(
            await session.scalars(select(AuditEntry.actor).where(AuditEntry.org_id == a.id))
        )
    assert actors
    assert all(actor.startswith("key ") for actor in actors), actors
    async with db.transaction(write=False) as session:
        member_a = await session.get_one(Member, ids_a["member_id"])
    assert (member_a.org_id, member_a.role) == (a.id, "owner")
    lst = await client.get(f"/v1/orgs/{a.id}/lists/{ids_a['list_id']}", headers=a.bearer)
    assert lst.json()["name"] == "alpha-private-list"
