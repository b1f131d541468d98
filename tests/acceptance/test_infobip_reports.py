"""Infobip delivery reports come back to the connection's own report URL: each message
sent asks for them there (`notifyUrl`), and a report posted to that very URL moves the
message and the broadcast's counters."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from tests.acceptance.test_sms_broadcast import RECIPIENTS, _drain, _messages, _sms_broadcast
from tests.acceptance.test_sms_broadcast import infobip as infobip_plan
from tests.support.factories import make_org
from tidings.db.engine import Database
from tidings.settings import Settings
from tidings.testing import Gateway

TOKEN = "infobip-report-token-0123456789"


async def test_each_message_asks_for_its_report_at_the_connections_report_url(
    client: httpx.AsyncClient, db: Database, gateway: Gateway, settings: Settings
) -> None:
    gateway.plan = infobip_plan
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    created = await client.post(
        f"{base}/connections",
        json={"name": "infobip", "channel": "sms", "kind": "infobip", "is_default": True,
              "settings": {"base_url": gateway.url, "batch_size": 4},
              "credentials": {"api_key": "ib-key", "inbound_token": TOKEN}},
        headers=h,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    connection_id = created.json()["id"]
    broadcast_id = await _sms_broadcast(client, org)

    await _drain(db)

    expected = f"{settings.public_url.rstrip('/')}/reports/{connection_id}/infobip/{TOKEN}"
    sent = [m for request in gateway.requests for m in request.json()["messages"]]
    assert len(sent) == RECIPIENTS
    assert {m["notifyUrl"] for m in sent} == {expected}
    assert {m["notifyContentType"] for m in sent} == {"application/json"}

    # Infobip posts the report to that URL: the path it names is Tidings' report route.
    messages = {m["recipient"]: m for m in await _messages(client, org, broadcast_id)}
    delivered = [m for m in messages.values() if m["status"] == "sent"][:3]
    report = {
        "results": [
            {"bulkId": "tidings-x", "messageId": m["provider_id"], "to": m["recipient"][1:],
             "sentAt": "2026-11-22T04:00:00.000+0000", "doneAt": "2026-11-22T04:00:05.000+0000",
             "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5,
                        "name": "DELIVERED_TO_HANDSET"},
             "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"}}
            for m in delivered
        ]
    }  # fmt: skip
    response = await client.post(urlsplit(expected).path, json=report)
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    after = {m["id"]: m["status"] for m in await _messages(client, org, broadcast_id)}
    assert {after[m["id"]] for m in delivered} == {"delivered"}
    done = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=h)).json()
    assert done["delivered_count"] == 3


async def test_no_inbound_token_no_notify_url(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    """Without a token a report could not be authenticated: the account's own setting
    (Infobip's portal) stays in charge."""
    gateway.plan = infobip_plan
    org = await make_org(db)
    created = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": "infobip", "channel": "sms", "kind": "infobip", "is_default": True,
              "settings": {"base_url": gateway.url}, "credentials": {"api_key": "ib-key"}},
        headers=org.bearer,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    await _sms_broadcast(client, org)
    await _drain(db)
    sent = [m for request in gateway.requests for m in request.json()["messages"]]
    assert len(sent) == RECIPIENTS
    assert not any("notifyUrl" in m or "notifyContentType" in m for m in sent)
