"""SMS broadcasts end to end: contacts, template, campaign and connection through the API,
a Dispatcher draining the broadcast into a real HTTP gateway on loopback, and what the
gateway received checked message by message."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import httpx

from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.testing import Gateway, Recorded, Reply

RECIPIENTS = 23
SENDER = "AcmeShop"
API_KEY = "ib-acceptance-key"
TOKEN = "gw-acceptance-token"
DISPATCH_BATCH = 10
INFOBIP_BATCH = 4
TEXT = "Hi {{ first_name }}, your code is {{ code }}."


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _messages(
    http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int
) -> list[dict[str, Any]]:
    url = f"/v1/orgs/{org.id}/messages?broadcast_id={broadcast_id}&limit=500"
    page = (await http.get(url, headers=org.bearer)).json()
    assert page["next_cursor"] is None
    found: list[dict[str, Any]] = page["data"]
    return found


def _phone(i: int) -> str:
    return f"+4179302{i:04d}"  # Swiss mobile numbers, valid for `phonenumbers`


async def _sms_broadcast(
    http: httpx.AsyncClient, org: OrgWithKey, *, connection_id: int | None = None
) -> int:
    """Contacts 0…RECIPIENTS-1 with phones (plus one with only an email), an SMS template
    and campaign, and a broadcast to all of them, started now."""
    base, h = f"/v1/orgs/{org.id}", org.bearer
    rows: list[dict[str, Any]] = [
        {"phone": _phone(i), "first_name": f"Zoë{i}", "attributes": {"code": f"C-{i:03d}"}}
        for i in range(RECIPIENTS)
    ]
    rows.append({"email": "no-phone@example.com", "first_name": "Nophone"})
    await upsert(http, org, rows)
    template = await _post(
        http, f"{base}/templates", h, {"name": "t", "channel": "sms", "text": TEXT}
    )
    campaign = await _post(
        http,
        f"{base}/campaigns",
        h,
        {
            "name": "c",
            "channel": "sms",
            "template_id": template["id"],
            "sms_sender": SENDER,
            "connection_id": connection_id,
        },
    )
    broadcast = await _post(
        http,
        f"{base}/broadcasts",
        h,
        {"name": "b", "campaign_id": campaign["id"], "send_to_all": True},
    )
    broadcast_id: int = broadcast["id"]
    return broadcast_id


async def _drain(db: Database, *, batch_size: int = DISPATCH_BATCH) -> None:
    dispatcher = Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=batch_size))
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()  # before the gateway stops: its client talks to it


def infobip(request: Recorded) -> Reply:
    """Infobip's answer: every message PENDING but the one to contact 7, REJECTED."""
    entries = []
    for message in request.json()["messages"]:
        (destination,) = message["destinations"]
        rejected = destination["to"] == _phone(7)[1:]
        status = (
            {"groupId": 5, "groupName": "REJECTED", "id": 52, "name": "REJECTED_DESTINATION"}
            if rejected
            else {"groupId": 1, "groupName": "PENDING", "id": 26, "name": "PENDING_ACCEPTED"}
        )
        entries.append(
            {"to": destination["to"], "messageId": destination["messageId"], "status": status}
        )
    return Reply(200, {"bulkId": request.json()["bulkId"], "messages": entries})


async def test_an_sms_broadcast_goes_out_through_infobip(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    gateway.plan = infobip
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await _post(
        client,
        f"{base}/connections",
        h,
        {
            "name": "infobip",
            "channel": "sms",
            "kind": "infobip",
            "is_default": True,
            "settings": {"base_url": gateway.url, "batch_size": INFOBIP_BATCH},
            "credentials": {"api_key": API_KEY},
        },
    )
    broadcast_id = await _sms_broadcast(client, org)

    await _drain(db)

    # Several dispatcher batches, each split into several Infobip requests.
    assert len(gateway.requests) >= math.ceil(RECIPIENTS / INFOBIP_BATCH)
    by_phone: dict[str, dict[str, Any]] = {}
    delivered: Counter[str] = Counter()
    for request in gateway.requests:
        assert (request.method, request.path) == ("POST", "/sms/2/text/advanced")
        assert request.headers["authorization"] == f"App {API_KEY}"
        messages = request.json()["messages"]
        assert 1 <= len(messages) <= INFOBIP_BATCH
        for message in messages:
            (destination,) = message["destinations"]
            delivered[destination["to"]] += 1
            by_phone[destination["to"]] = message | {"messageId": destination["messageId"]}
    assert delivered == Counter({_phone(i)[1:]: 1 for i in range(RECIPIENTS)})  # once each
    for i in range(RECIPIENTS):
        message = by_phone[_phone(i)[1:]]
        assert message["from"] == SENDER
        assert message["text"] == f"Hi Zoë{i}, your code is C-{i:03d}."

    done = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=h)).json()
    counters = ("status", "recipients_count", "skipped_count", "sent_count", "failed_count")
    assert tuple(done[c] for c in counters) == ("SENT", RECIPIENTS, 1, RECIPIENTS - 1, 1)
    messages = {m["recipient"]: m for m in await _messages(client, org, broadcast_id)}
    for i in range(RECIPIENTS):
        message = messages[_phone(i)]
        assert by_phone[_phone(i)[1:]]["messageId"] == str(message["id"])
        if i == 7:
            assert (message["status"], message["provider_id"]) == ("failed", None)
            assert message["reason"] == "Infobip REJECTED: REJECTED_DESTINATION"
        else:
            assert (message["status"], message["reason"]) == ("sent", None)
            assert message["provider_id"] == str(message["id"])  # Infobip's messageId: ours
            assert message["attempts"] == 1
    assert messages[None]["status"] == "skipped"
    assert messages[None]["reason"] == "no phone number"


async def test_an_sms_broadcast_goes_out_through_a_generic_http_gateway(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    gateway.plan = lambda request: Reply(200, {"result": {"id": f"gw-{request.json()['ref']}"}})
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    connection = await _post(
        client,
        f"{base}/connections",
        h,
        {
            "name": "gateway",
            "channel": "sms",
            "kind": "http_sms",
            "settings": {
                "url": f"{gateway.url}/v2/sms",
                "body": {"to": "{to}", "from": "{sender}", "text": "{text}", "ref": "{message_id}"},
                "id_path": "result.id",
            },
            "credentials": {"headers": {"Authorization": f"Bearer {TOKEN}"}},
        },
    )
    broadcast_id = await _sms_broadcast(client, org, connection_id=connection["id"])

    await _drain(db)

    assert len(gateway.requests) == RECIPIENTS  # one request per message
    bodies = {}
    for request in gateway.requests:
        assert (request.method, request.path) == ("POST", "/v2/sms")
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        body = request.json()
        bodies[body["to"]] = body
    assert set(bodies) == {_phone(i) for i in range(RECIPIENTS)}
    for i in range(RECIPIENTS):
        assert bodies[_phone(i)]["from"] == SENDER
        assert bodies[_phone(i)]["text"] == f"Hi Zoë{i}, your code is C-{i:03d}."

    done = (await client.get(f"{base}/broadcasts/{broadcast_id}", headers=h)).json()
    counters = ("status", "recipients_count", "skipped_count", "sent_count", "failed_count")
    assert tuple(done[c] for c in counters) == ("SENT", RECIPIENTS, 1, RECIPIENTS, 0)
    for message in await _messages(client, org, broadcast_id):
        if message["recipient"] is None:
            continue
        assert message["status"] == "sent"
        assert message["provider_id"] == f"gw-{message['id']}"
        assert bodies[message["recipient"]]["ref"] == str(message["id"])


async def test_a_sent_sms_records_its_segment_count(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    gateway.plan = infobip
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await _post(
        client,
        f"{base}/connections",
        h,
        {
            "name": "infobip",
            "channel": "sms",
            "kind": "infobip",
            "is_default": True,
            "settings": {"base_url": gateway.url},
            "credentials": {"api_key": API_KEY},
        },
    )
    broadcast_id = await _sms_broadcast(client, org)

    await _drain(db)

    sent = [m for m in await _messages(client, org, broadcast_id) if m["status"] == "sent"]
    assert len(sent) == RECIPIENTS - 1
    # "Hi Zoë…" is UCS-2 (ë is not in GSM 03.38), well under 70 characters: one segment.
    assert {m["segments"] for m in sent} == {1}


async def test_a_text_longer_than_the_connection_sends_whole_fails_before_sending(
    client: httpx.AsyncClient, db: Database, gateway: Gateway
) -> None:
    """Kannel sends the first `max-messages` parts of a longer text (10 by default),
    answers 202 and the rest is lost: such a text fails before it is handed over, with
    a reason naming both numbers; a text that fits goes."""
    gateway.plan = lambda request: Reply(202, "0: Accepted for delivery")
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    body: dict[str, Any] = {
        "name": "kannel", "channel": "sms", "kind": "kannel", "is_default": True,
        "settings": {"base_url": gateway.url, "delivery_reports": False},
        "credentials": {"username": "tidings", "password": "secret"},
    }  # fmt: skip
    for bad in (0, 256, "ten"):
        settings = body["settings"] | {"max_segments": bad}
        refused = await client.post(
            f"{base}/connections", json=body | {"settings": settings}, headers=h
        )
        assert refused.status_code == 422, refused.text
        assert "max_segments" in refused.text
    connection = await _post(client, f"{base}/connections", h, body)
    assert connection["settings"]["max_segments"] == 10  # Kannel's max-messages default
    await upsert(client, org, [{"phone": _phone(i), "first_name": "A"} for i in range(2)])
    template = await _post(
        client, f"{base}/templates", h,
        {"name": "t", "channel": "sms", "text": "{% if phone.endswith('0') %}{{ 'x' * 1530 }}"
                                                "{% else %}{{ 'y' * 1531 }}{% endif %}"},
    )  # fmt: skip
    campaign = await _post(
        client, f"{base}/campaigns", h,
        {"name": "c", "channel": "sms", "template_id": template["id"], "sms_sender": SENDER},
    )  # fmt: skip
    broadcast = await _post(
        client, f"{base}/broadcasts", h,
        {"name": "b", "campaign_id": campaign["id"], "send_to_all": True},
    )  # fmt: skip

    await _drain(db)

    outcomes = {
        m["recipient"]: (m["status"], m["reason"])
        for m in await _messages(client, org, broadcast["id"])
    }
    assert outcomes == {
        _phone(0): ("sent", None),  # 1,530 GSM-7 characters: 10 parts of 153
        _phone(1): (
            "failed",
            "the text takes 11 SMS segments; this connection sends at most 10 (its max_segments)",
        ),
    }
    assert [r.param("to") for r in gateway.requests] == [_phone(0)]

    # Raised to what the gateway is configured for, the longer text goes.
    changed = await client.patch(
        f"{base}/connections/{connection['id']}",
        json={"settings": body["settings"] | {"max_segments": 11}}, headers=h,
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    again = await _post(
        client, f"{base}/broadcasts", h,
        {"name": "b2", "campaign_id": campaign["id"], "send_to_all": True},
    )  # fmt: skip
    await _drain(db)
    statuses = {m["status"] for m in await _messages(client, org, again["id"])}
    assert statuses == {"sent"}
