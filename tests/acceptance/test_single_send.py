"""POST /messages: one message, and Idempotency-Key semantics."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from tests.support.factories import make_org
from tests.support.sending import email_campaign
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.outbox.models import Message


async def _messages(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Message)) or 0)


def _body(campaign_id: int, **extra: Any) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "to": {"email": "ada@example.com", "first_name": "Ada", "attributes": {"code": "X1"}},
        "variables": {"plan": "gold"},
        **extra,
    }


async def test_one_message_to_a_new_contact_is_sent(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    response = await client.post(
        f"/v1/orgs/{org.id}/messages", json=_body(campaign_id), headers=org.bearer
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    await Dispatcher(db, renderer=Renderer()).drain()
    sent = await client.get(
        f"/v1/orgs/{org.id}/messages/{response.json()['id']}", headers=org.bearer
    )
    assert sent.json()["status"] == "sent"
    sunk = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()["data"]
    assert "Hello Ada, your gold plan" in sunk[0]["content"]  # variables override attributes


async def test_same_key_same_body_is_answered_once(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    headers = {**org.bearer, "Idempotency-Key": "order-1001"}
    path = f"/v1/orgs/{org.id}/messages"
    first = await client.post(path, json=_body(campaign_id), headers=headers)
    again = await client.post(path, json=_body(campaign_id), headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert await _messages(db) == 1

    different = await client.post(path, json=_body(campaign_id, variables={}), headers=headers)
    assert different.status_code == 422
    assert different.json()["errors"][0]["field"] == "Idempotency-Key"
    assert different.json()["type"] == "urn:tidings:problem:idempotency-key-reused"
    assert await _messages(db) == 1


async def test_an_error_answer_is_replayed_too(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    headers = {**org.bearer, "Idempotency-Key": "bad-campaign"}
    path = f"/v1/orgs/{org.id}/messages"
    first = await client.post(path, json=_body(9999), headers=headers)
    again = await client.post(path, json=_body(9999), headers=headers)
    assert (first.status_code, again.status_code) == (404, 404)
    assert again.json() == first.json()
    assert again.headers["content-type"] == "application/problem+json"
