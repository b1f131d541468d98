"""What an SMS costs: the price per segment × the segments of the text it is sent with
(links and personal data in place), settled by the dispatcher before hand-over; a test
key's sends cost nothing; what is not sent is given back."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import func, select

from tests.support.factories import OrgWithKey, make_org
from tidings.content import sms
from tidings.content.render import Renderer
from tidings.credits.models import CreditEntry
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.outbox.models import Message

PRICE = 0.01  # credits per SMS segment
MICRO_PRICE = 10_000
LONG_NOTE = "x" * 280  # with a link after it: over 306 GSM characters, 3 segments


async def _billing(client: httpx.AsyncClient, org: OrgWithKey, credits: float) -> None:
    prices = await client.put(
        f"/v1/orgs/{org.id}/prices",
        json={"prices": [{"channel": "sms", "amount": PRICE}]},
        headers=org.bearer,
    )
    assert prices.status_code == 200, prices.text
    top_up = await client.post(
        f"/v1/orgs/{org.id}/credits/top-ups", json={"amount": credits}, headers=org.bearer
    )
    assert top_up.status_code == 201, top_up.text


async def _invite_campaign(client: httpx.AsyncClient, org: OrgWithKey) -> int:
    """An SMS campaign whose text is a note, then the recipient's invite link."""
    base = f"/v1/orgs/{org.id}"
    template = await client.post(
        f"{base}/templates",
        json={"name": "invite", "channel": "sms", "text": "{{ note }} {{ invite_link }}"},
        headers=org.bearer,
    )
    assert template.status_code == 201, template.text
    campaign = await client.post(
        f"{base}/campaigns",
        json={
            "name": "survey",
            "channel": "sms",
            "template_id": template.json()["id"],
            "sms_sender": "Acme",
            "invite_url": "https://survey.example/s/abc",
        },
        headers=org.bearer,
    )
    assert campaign.status_code == 201, campaign.text
    return int(campaign.json()["id"])


async def _send(
    client: httpx.AsyncClient,
    org: OrgWithKey,
    campaign_id: int,
    phone: str,
    note: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    response = await client.post(
        f"/v1/orgs/{org.id}/messages",
        json={"campaign_id": campaign_id, "to": {"phone": phone}, "variables": {"note": note}},
        headers=headers or org.bearer,
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _credits(client: httpx.AsyncClient, org: OrgWithKey) -> dict[str, Any]:
    answer: dict[str, Any] = (
        await client.get(f"/v1/orgs/{org.id}/credits", headers=org.bearer)
    ).json()
    return answer


async def _ledger_sum(db: Database, org: OrgWithKey) -> int:
    async with db.session() as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(CreditEntry.amount), 0)).where(
                CreditEntry.org_id == org.id
            )
        )
    return int(total or 0)


async def _cost(db: Database, message_id: int) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(Message.cost).where(Message.id == message_id)) or 0)


async def test_a_three_segment_sms_is_charged_three_segments(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await _invite_campaign(client, org)
    await _billing(client, org, 1)
    queued = await _send(client, org, campaign_id, "+41793026701", LONG_NOTE)
    assert (await _credits(client, org))["balance"] == 1 - PRICE  # 1 segment, reserved

    await Dispatcher(db, renderer=Renderer()).drain()
    sunk = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()
    text = sunk["data"][0]["content"]
    assert "/l/" in text
    assert sms.shape(text).segments == 3  # the link made it 3
    message = (
        await client.get(f"/v1/orgs/{org.id}/messages/{queued['id']}", headers=org.bearer)
    ).json()
    assert (message["status"], message["segments"], message["test"]) == ("sent", 3, False)
    assert await _cost(db, queued["id"]) == 3 * MICRO_PRICE
    events = await client.get(
        f"/v1/orgs/{org.id}/events", params={"message_id": queued["id"]}, headers=org.bearer
    )
    assert [(e["type"], e["test"]) for e in events.json()["data"]] == [("sent", False)]

    credits = await _credits(client, org)
    assert credits["balance"] == round(1 - 3 * PRICE, 6)
    assert [(e["kind"], e["amount"]) for e in credits["entries"]["data"]] == [
        ("reserve", -2 * PRICE),  # settled: the 2 segments the final text added
        ("reserve", -PRICE),  # accepted: 1 segment
        ("top-up", 1),
    ]
    assert await _ledger_sum(db, org) == 1_000_000 - 3 * MICRO_PRICE


async def test_an_sms_the_balance_cannot_settle_fails_alone_and_is_refunded(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await _invite_campaign(client, org)
    await _billing(client, org, 2 * PRICE)
    long = await _send(client, org, campaign_id, "+41793026701", LONG_NOTE)
    short = await _send(client, org, campaign_id, "+41793026702", "Hi")
    assert (await _credits(client, org))["balance"] == 0  # one segment each, reserved

    await Dispatcher(db, renderer=Renderer()).drain()
    path = f"/v1/orgs/{org.id}/messages"
    failed = (await client.get(f"{path}/{long['id']}", headers=org.bearer)).json()
    sent = (await client.get(f"{path}/{short['id']}", headers=org.bearer)).json()
    assert (failed["status"], failed["reason"]) == ("failed", "insufficient credit")
    assert (sent["status"], sent["segments"]) == ("sent", 1)
    credits = await _credits(client, org)
    assert credits["balance"] == PRICE  # the failed one's reservation came back
    assert all(e["balance_after"] >= 0 for e in credits["entries"]["data"])
    assert await _ledger_sum(db, org) == MICRO_PRICE


async def test_a_test_key_is_charged_nothing(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    campaign_id = await _invite_campaign(client, org)
    await _billing(client, org, 1)
    issued = await client.post(
        f"/v1/orgs/{org.id}/keys", json={"name": "ci", "kind": "test"}, headers=org.bearer
    )
    assert issued.status_code == 201, issued.text
    test_key = {"Authorization": f"Bearer {issued.json()['api_key']}"}
    queued = await _send(client, org, campaign_id, "+41793026701", LONG_NOTE, headers=test_key)
    assert queued["test"] is True

    await Dispatcher(db, renderer=Renderer()).drain()
    message = (
        await client.get(f"/v1/orgs/{org.id}/messages/{queued['id']}", headers=org.bearer)
    ).json()
    assert (message["status"], message["test"], message["segments"]) == ("sent", True, 3)
    assert await _cost(db, queued["id"]) == 0
    events = await client.get(
        f"/v1/orgs/{org.id}/events", params={"message_id": queued["id"]}, headers=org.bearer
    )
    assert [(e["type"], e["test"]) for e in events.json()["data"]] == [("sent", True)]
    credits = await _credits(client, org)
    assert credits["balance"] == 1
    assert [e["kind"] for e in credits["entries"]["data"]] == ["top-up"]


async def test_a_cancelled_broadcast_gives_its_reservation_back(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await _invite_campaign(client, org)
    await _billing(client, org, 1)
    base = f"/v1/orgs/{org.id}"
    created = await client.post(
        f"{base}/broadcasts",
        json={
            "name": "later",
            "campaign_id": campaign_id,
            "recipients": [{"phone": f"+4179302670{i}"} for i in range(3)],
            "scheduled_at": "2999-01-01T00:00:00Z",
        },
        headers=org.bearer,
    )
    assert created.status_code == 201, created.text
    assert (await _credits(client, org))["balance"] == 1 - 3 * PRICE
    broadcast_id = created.json()["id"]
    cancelled = await client.post(f"{base}/broadcasts/{broadcast_id}/cancel", headers=org.bearer)
    assert cancelled.status_code == 200, cancelled.text
    credits = await _credits(client, org)
    assert credits["balance"] == 1
    assert [(e["kind"], e["amount"], e["reference"]) for e in credits["entries"]["data"]] == [
        ("release", 3 * PRICE, f"broadcast:{broadcast_id}"),
        ("reserve", -3 * PRICE, f"broadcast:{broadcast_id}"),
        ("top-up", 1, None),
    ]
