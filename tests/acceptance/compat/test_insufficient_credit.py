"""Each dialect's paths that create and start a send refuse it up front when the org's
balance cannot cover it, in the dialect's own error shape, through the native check
(`broadcasts.estimate.require_covered`, the reservation of `credits.charge_messages`):
nothing is made, and the same request goes through once the balance covers it. None
of the four seed documents says what its provider answers without credit; each answers
HTTP 402 in its own shape (docs/compat.md)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.db.engine import Database

PRICE = 0.5  # credits per message: more than an empty balance covers


async def _priced(client: httpx.AsyncClient, org: OrgWithKey, channel: str) -> None:
    answer = await client.put(
        f"/v1/orgs/{org.id}/prices",
        json={"prices": [{"channel": channel, "amount": PRICE}]},
        headers=org.bearer,
    )
    assert answer.status_code == 200, answer.text


async def _top_up(client: httpx.AsyncClient, org: OrgWithKey) -> None:
    answer = await client.post(
        f"/v1/orgs/{org.id}/credits/top-ups", json={"amount": 10}, headers=org.bearer
    )
    assert answer.status_code == 201, answer.text


async def _native(client: httpx.AsyncClient, org: OrgWithKey, what: str) -> list[Any]:
    answer = await client.get(f"/v1/orgs/{org.id}/{what}", headers=org.bearer)
    assert answer.status_code == 200, answer.text
    found: list[Any] = answer.json()["data"]
    return found


async def _email_campaign(client: httpx.AsyncClient, org: OrgWithKey, **extra: Any) -> int:
    base, h = f"/v1/orgs/{org.id}", org.bearer
    template = await client.post(
        f"{base}/templates",
        headers=h,
        json={"name": "t", "channel": "email", "subject": "Hi", "text": "Hi {{ invite_link }}"},
    )
    assert template.status_code == 201, template.text
    campaign = await client.post(
        f"{base}/campaigns",
        headers=h,
        json={"name": "c", "channel": "email", "template_id": template.json()["id"],
              "from_email": "news@acme.example", **extra},
    )  # fmt: skip
    assert campaign.status_code == 201, campaign.text
    campaign_id: int = campaign.json()["id"]
    return campaign_id


def _invent_refusal(answer: httpx.Response) -> None:
    assert answer.status_code == 402, answer.text
    body = answer.json()
    assert body["error"]["code"] == "INSUFFICIENT_CREDIT"
    assert "balance" in body["error"]["message"] or "credit" in body["error"]["message"]


async def test_invent_create_and_attach_refuse_a_send_the_balance_cannot_cover(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await upsert(client, org, [{"email": f"p{i}@example.com"} for i in range(3)])
    campaign_id = await _email_campaign(client, org)
    await _priced(client, org, "email")
    path = f"/compat/invent/orgs/{org.id}/broadcasts"
    body = {"name": "spring", "send_to_all": True, "campaign_id": str(campaign_id)}

    _invent_refusal(await client.post(path, headers=org.bearer, json=body))
    assert await _native(client, org, "broadcasts") == []  # nothing made

    # A draft (no template yet) costs nothing; attaching its template starts it: refused.
    draft = await client.post(path, headers=org.bearer, json={"name": "d", "send_to_all": True})
    assert draft.status_code == 200, draft.text
    assert draft.json()["status"] == "DRAFT"
    attach = f"{path}/{draft.json()['id']}/templates"
    templates = {"templates": [{"campaign_id": str(campaign_id)}]}
    _invent_refusal(await client.put(attach, headers=org.bearer, json=templates))
    [kept] = await _native(client, org, "broadcasts")
    assert (kept["status"], kept["campaign_id"]) == ("DRAFT", None)

    await _top_up(client, org)
    attached = await client.put(attach, headers=org.bearer, json=templates)
    assert attached.status_code == 200, attached.text
    assert attached.json()["status"] == "SCHEDULED"
    created = await client.post(path, headers=org.bearer, json=body)
    assert created.status_code == 200, created.text


async def test_walr_invites_refuse_what_the_balance_cannot_cover(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _email_campaign(
        client, org, external_id="nps", project_ref="p-42", survey_ref="s-7",
        invite_url="https://survey.example/s-7",
    )  # fmt: skip
    await _priced(client, org, "email")
    path = "/compat/walr/projects/p-42/surveys/s-7/invites"
    rows = [{"variables": {"email": f"p{i}@example.com"}} for i in range(3)]
    body = {"campaignId": "nps", "recipients": rows}

    answer = await client.post(path, headers=org.bearer, json=body)
    assert answer.status_code == 402, answer.text
    assert answer.json()["statusCode"] == 402
    assert set(answer.json()) == {"error", "statusCode"}
    assert await _native(client, org, "broadcasts") == []
    assert await _native(client, org, "contacts") == []

    await _top_up(client, org)
    accepted = await client.post(path, headers=org.bearer, json=body)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["accepted"] == 3


async def test_an_infobip_invite_the_balance_cannot_cover_is_not_enough_credits(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    key = "0F3C3F29829FAB88714BA205BEC6D28F"
    made = await client.post(
        f"/v1/orgs/{org.id}/applications",
        headers=org.bearer,
        json={"key": key, "name": "Foo", "sms_sender": "Foo",
              "integrations": [{"type": "FACEBOOK", "target_url": "https://m.me/foo"}]},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    await _priced(client, org, "sms")
    path = f"/compat/infobip/omnichat/1/applications/{key}/integrations/FACEBOOK/invite"
    body = {"to": "41793026727", "linkPlaceholder": "<link>", "message": "Follow us: <link>"}

    answer = await client.post(path, headers=org.basic, json=body)
    assert answer.status_code == 402, answer.text
    assert answer.json()["requestError"]["serviceException"]["messageId"] == "NOT_ENOUGH_CREDITS"
    assert await _native(client, org, "messages") == []

    await _top_up(client, org)
    sent = await client.post(path, headers=org.basic, json=body)
    assert sent.status_code == 200, sent.text


async def test_an_octopush_campaign_the_balance_cannot_cover_is_code_104(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _priced(client, org, "email")
    body = {"recipients": [{"email": f"p{i}@example.com"} for i in range(3)],
            "subject": "Offer", "text": "Hello", "email_from": "news@acme.example"}  # fmt: skip

    answer = await client.post("/compat/octopush/email/campaign/send", headers=org.header_pair,
                               json=body)  # fmt: skip
    assert answer.status_code == 402, answer.text
    assert answer.json()["code"] == 104
    assert await _native(client, org, "campaigns") == []
    assert await _native(client, org, "broadcasts") == []

    await _top_up(client, org)
    sent = await client.post("/compat/octopush/email/campaign/send", headers=org.header_pair,
                             json=body)  # fmt: skip
    assert sent.status_code == 200, sent.text
    assert sent.json()["number_of_contacts"] == 3
