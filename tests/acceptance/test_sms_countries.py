"""Per-org SMS country allowlists: set through PATCH /orgs, applied by every sending path
(broadcast expansion, explicit recipients, single sends) with the reason `country not
allowed`."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.factories import OrgWithKey, make_org, upsert
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher

FR = "+33612345678"
BE = "+32470123456"
CH = "+41793020001"
US = "+14155550123"
FREEPHONE = "+80012345678"  # international freephone: a number of no country
GG = "+447911123456"  # a +44 number of Guernsey, not of the United Kingdom


async def _post(http: httpx.AsyncClient, path: str, org: OrgWithKey, body: Any) -> Any:
    response = await http.post(f"/v1/orgs/{org.id}{path}", json=body, headers=org.bearer)
    assert response.status_code == 201, response.text
    return response.json()


async def _sms_campaign(http: httpx.AsyncClient, org: OrgWithKey, *, purpose: str) -> int:
    template = await _post(
        http, "/templates", org, {"name": purpose, "channel": "sms", "text": "Hi {{ first_name }}"}
    )
    campaign = await _post(
        http,
        "/campaigns",
        org,
        {"name": purpose, "channel": "sms", "template_id": template["id"], "purpose": purpose},
    )
    campaign_id: int = campaign["id"]
    return campaign_id


async def _allow(http: httpx.AsyncClient, org: OrgWithKey, countries: list[str] | None) -> Any:
    response = await http.patch(
        f"/v1/orgs/{org.id}", json={"sms_countries": countries}, headers=org.bearer
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _messages(http: httpx.AsyncClient, org: OrgWithKey, broadcast_id: int) -> Any:
    url = f"/v1/orgs/{org.id}/messages?broadcast_id={broadcast_id}&limit=100"
    return (await http.get(url, headers=org.bearer)).json()["data"]


async def test_the_allowlist_is_set_upper_cased_shown_and_cleared(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    url, h = f"/v1/orgs/{org.id}", org.bearer
    assert (await client.get(url, headers=h)).json()["sms_countries"] is None

    stored = await _allow(client, org, ["fr", "BE", " fr "])
    assert stored["sms_countries"] == ["BE", "FR"]
    assert (await client.get(url, headers=h)).json()["sms_countries"] == ["BE", "FR"]
    renamed = (await client.patch(url, json={"name": "Acme SA"}, headers=h)).json()
    assert renamed["sms_countries"] == ["BE", "FR"]  # left out: unchanged
    assert (await _allow(client, org, []))["sms_countries"] == []  # SMS to no country
    assert (await _allow(client, org, None))["sms_countries"] is None  # every country


async def test_a_bad_country_is_a_422_naming_the_field(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    url, h = f"/v1/orgs/{org.id}", org.bearer
    response = await client.patch(url, json={"sms_countries": ["FR", "XX", "France"]}, headers=h)
    assert response.status_code == 422
    errors = [(e["field"], e["reason"]) for e in response.json()["errors"]]
    assert errors == [
        ("sms_countries[1]", "unknown country 'XX' (ISO 3166 alpha-2)"),
        ("sms_countries[2]", "unknown country 'FRANCE' (ISO 3166 alpha-2)"),
    ]
    not_text = await client.patch(url, json={"sms_countries": [33]}, headers=h)
    assert not_text.status_code == 422
    assert not_text.json()["errors"][0]["field"] == "sms_countries[0]"
    not_a_list = await client.patch(url, json={"sms_countries": "FR"}, headers=h)
    assert not_a_list.status_code == 422
    assert not_a_list.json()["errors"][0]["field"] == "sms_countries"
    assert (await client.get(url, headers=h)).json()["sms_countries"] is None  # unchanged


async def test_contacts_show_their_phone_country(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db, phone_region="FR")
    report = await upsert(
        client,
        org,
        [
            {"phone": "06 12 34 56 78"},
            {"phone": GG},
            {"phone": FREEPHONE},
            {"email": "a@b.example"},
        ],
    )
    countries = []
    for result in report["results"]:
        url = f"/v1/orgs/{org.id}/contacts/{result['id']}"
        countries.append((await client.get(url, headers=org.bearer)).json()["phone_country"])
    assert countries == ["FR", "GG", None, None]


async def test_a_broadcast_skips_phones_of_countries_not_allowed(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _allow(client, org, ["FR", "be"])
    await upsert(
        client,
        org,
        [
            {"phone": FR, "first_name": "Fleur"},
            {"phone": BE, "first_name": "Bram"},
            {"phone": CH, "first_name": "Chiara"},
            {"phone": US, "first_name": "Sam"},
            {"phone": FREEPHONE, "first_name": "Free"},
            {"email": "no-phone@example.com"},
            # Unsubscribed and of a refused country: the country is the reason given.
            {"phone": GG, "subscriptions": {"sms": "unsubscribed"}},
        ],
    )
    campaign_id = await _sms_campaign(client, org, purpose="marketing")
    created = await _post(
        client, "/broadcasts", org, {"name": "b", "campaign_id": campaign_id, "send_to_all": True}
    )
    await Dispatcher(db, renderer=Renderer()).drain()

    done = await client.get(f"/v1/orgs/{org.id}/broadcasts/{created['id']}", headers=org.bearer)
    counters = ("status", "contacts_count", "recipients_count", "skipped_count", "sent_count")
    assert tuple(done.json()[c] for c in counters) == ("SENT", 7, 2, 5, 2)
    outcomes = {
        m["recipient"]: (m["status"], m["reason"])
        for m in await _messages(client, org, created["id"])
    }
    assert outcomes == {
        FR: ("sent", None),
        BE: ("sent", None),
        CH: ("skipped", "country not allowed"),
        US: ("skipped", "country not allowed"),
        FREEPHONE: ("skipped", "country not allowed"),
        GG: ("skipped", "country not allowed"),
        None: ("skipped", "no phone number"),
    }
    sunk = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()
    assert sorted(m["recipient"] for m in sunk["data"]) == sorted([FR, BE])


async def test_explicit_recipients_and_single_sends_follow_the_same_rule(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _allow(client, org, ["CH"])
    campaign_id = await _sms_campaign(client, org, purpose="transactional")
    created = await _post(
        client,
        "/broadcasts",
        org,
        {"name": "b", "campaign_id": campaign_id, "recipients": [{"phone": CH}, {"phone": FR}]},
    )
    single = await _post(
        client, "/messages", org, {"campaign_id": campaign_id, "to": {"phone": US}}
    )
    assert (single["status"], single["reason"]) == ("skipped", "country not allowed")
    assert single["finished_at"] is not None
    allowed = await _post(
        client, "/messages", org, {"campaign_id": campaign_id, "to": {"phone": CH}}
    )
    assert (allowed["status"], allowed["reason"]) == ("queued", None)
    await Dispatcher(db, renderer=Renderer()).drain()

    outcomes = {
        m["recipient"]: (m["status"], m["reason"])
        for m in await _messages(client, org, created["id"])
    }
    assert outcomes == {CH: ("sent", None), FR: ("skipped", "country not allowed")}
    done = await client.get(f"/v1/orgs/{org.id}/broadcasts/{created['id']}", headers=org.bearer)
    assert (done.json()["sent_count"], done.json()["skipped_count"]) == (1, 1)
    url = f"/v1/orgs/{org.id}/messages/{allowed['id']}"
    assert (await client.get(url, headers=org.bearer)).json()["status"] == "sent"


async def test_email_is_not_limited_by_sms_countries(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _allow(client, org, [])
    template = await _post(
        client, "/templates", org, {"name": "t", "channel": "email", "subject": "s", "text": "t"}
    )
    campaign = await _post(
        client,
        "/campaigns",
        org,
        {"name": "c", "channel": "email", "template_id": template["id"], "from_email": "a@x.io"},
    )
    sent = await _post(
        client,
        "/messages",
        org,
        {"campaign_id": campaign["id"], "to": {"email": "ada@example.com", "phone": US}},
    )
    assert (sent["status"], sent["reason"]) == ("queued", None)
