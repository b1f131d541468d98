"""Broadcasts to explicit recipients, each with its own variables."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx

from tests.support.factories import make_org
from tests.support.sending import email_campaign
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.testing import Clock


async def _sink(client: httpx.AsyncClient, org_id: int, headers: dict[str, str]) -> list[Any]:
    page = (await client.get(f"/v1/orgs/{org_id}/sink/messages?limit=100", headers=headers)).json()
    return list(page["data"])


async def test_explicit_recipients_get_their_own_variables(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    recipients: list[Any] = [
        {"email": "ann@example.com", "first_name": "Ann", "variables": {"code": "A-1"}},
        {"email": "not an email", "variables": {"code": "X"}},
        {"email": "bob@example.com", "first_name": "Bob", "variables": {"code": "B-2"}},
        {"email": "cy@example.com", "variables": "not an object"},
        {"email": "ann@example.com", "variables": {"code": "A-2"}},  # Ann again: last wins
    ]
    response = await client.post(
        f"/v1/orgs/{org.id}/broadcasts",
        json={"name": "invites", "campaign_id": campaign_id, "recipients": recipients},
        headers=org.bearer,
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert [(r["index"], r["field"]) for r in created["rejected"]] == [
        (1, "recipients[1].email"),
        (3, "recipients[3].variables"),
    ]
    await Dispatcher(db, renderer=Renderer()).drain()

    done = (
        await client.get(f"/v1/orgs/{org.id}/broadcasts/{created['id']}", headers=org.bearer)
    ).json()
    assert (done["status"], done["recipients_count"], done["sent_count"]) == ("SENT", 2, 2)
    contents = {m["recipient"]: m["content"] for m in await _sink(client, org.id, org.bearer)}
    assert set(contents) == {"ann@example.com", "bob@example.com"}
    assert "code A-2" in contents["ann@example.com"]
    assert "code B-2" in contents["bob@example.com"]


async def test_a_scheduled_one_waits_for_its_time_even_paused_and_resumed(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    later = (utcnow() + timedelta(hours=2)).isoformat()
    created = (
        await client.post(
            f"/v1/orgs/{org.id}/broadcasts",
            json={
                "name": "later",
                "campaign_id": campaign_id,
                "scheduled_at": later,
                "recipients": [{"email": "ann@example.com", "variables": {"code": "1"}}],
            },
            headers=org.bearer,
        )
    ).json()
    base = f"/v1/orgs/{org.id}/broadcasts/{created['id']}"
    assert (await client.post(f"{base}/pause", headers=org.bearer)).json()["status"] == "PAUSED"
    assert (await client.post(f"{base}/resume", headers=org.bearer)).json()["status"] == "SCHEDULED"
    await Dispatcher(db, renderer=Renderer()).drain()
    assert await _sink(client, org.id, org.bearer) == []  # nothing before its time

    future = Dispatcher(db, renderer=Renderer(), clock=Clock(utcnow() + timedelta(hours=3)))
    await future.drain()
    sent = await _sink(client, org.id, org.bearer)
    assert [m["recipient"] for m in sent] == ["ann@example.com"]
