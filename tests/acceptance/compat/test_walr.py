"""Seed 000 (survey invites) under /compat/walr: the document's request, field by field,
and each error it lists, in its own shape."""

from __future__ import annotations

import email
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email import policy
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.support.factories import OrgWithKey, make_org
from tidings.db.engine import Database
from tidings.keys.models import ApiKey
from tidings.settings import Settings

Drain = Callable[[], Awaitable[None]]
PATH = "/compat/walr/projects/p-42/surveys/s-7/invites"


async def _campaign(client: httpx.AsyncClient, org: OrgWithKey, **extra: Any) -> dict[str, Any]:
    base, h = f"/v1/orgs/{org.id}", org.bearer
    channel = extra.pop("channel", "email")
    template_body: dict[str, Any] = (
        {
            "subject": "{{ first_name }}, tell us about {{ store }}",
            "text": "Hi {{ first_name }}, take the survey: {{ invite_link }}",
        }
        if channel == "email"
        else {"text": "Survey for {{ store }}: {{ invite_link }}"}
    )
    template = await client.post(
        f"{base}/templates",
        headers=h,
        json={"name": f"t-{channel}", "channel": channel, **template_body},
    )
    assert template.status_code == 201, template.text
    body = {
        "name": f"NPS {channel}",
        "channel": channel,
        "template_id": template.json()["id"],
        "external_id": f"nps-{channel}",
        "project_ref": "p-42",
        "survey_ref": "s-7",
        "invite_url": "https://survey.example/s-7?store={{ store | urlencode }}",
        **({"from_email": "research@acme.example"} if channel == "email" else {}),
        **extra,
    }
    campaign = await client.post(f"{base}/campaigns", headers=h, json=body)
    assert campaign.status_code == 201, campaign.text
    created: dict[str, Any] = campaign.json()
    return created


async def test_the_documented_request_invites_each_recipient_with_their_own_link(
    client: httpx.AsyncClient, db: Database, drain: Drain, settings: Settings
) -> None:
    org = await make_org(db)
    campaign = await _campaign(client, org)
    response = await client.post(
        PATH,
        headers=org.bearer,
        json={
            "campaignId": "nps-email",
            "recipients": [
                {"variables": {"email": "ada@example.com", "first_name": "Ada", "store": "Leeds"}},
                {"variables": {"first_name": "No address"}},
                {"variables": {"email": "alan@example.com", "firstName": "Alan", "store": "York"}},
                None,
            ],
            "sendTimeUtc": None,
        },
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert set(body) == {"batchId", "accepted", "skipped", "skippedRecipients"}
    assert isinstance(body["batchId"], str)
    assert (body["accepted"], body["skipped"]) == (2, 2)
    assert [row["index"] for row in body["skippedRecipients"]] == [1, 3]
    assert "email is required" in body["skippedRecipients"][0]["reason"]

    await drain()
    base, h = f"/v1/orgs/{org.id}", org.bearer
    sunk = (await client.get(f"{base}/sink/messages", headers=h)).json()["data"]
    assert sorted(m["recipient"] for m in sunk) == ["ada@example.com", "alan@example.com"]
    links = {}
    for message in sunk:
        parsed = email.message_from_bytes(message["content"].encode(), policy=policy.default)
        text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        first = "Ada" if message["recipient"].startswith("ada") else "Alan"
        assert text.startswith(f"Hi {first}, take the survey: ")
        assert message["subject"].endswith("Leeds" if first == "Ada" else "York")
        found = re.search(r"(http\S+/l/\S+)", text)
        assert found is not None
        links[first] = found.group(1)
    assert links["Ada"] != links["Alan"]
    follow = await client.get(links["Ada"].removeprefix(settings.public_url))
    assert follow.status_code == 302
    assert follow.headers["location"] == "https://survey.example/s-7?store=Leeds"

    # The variables are stored on the recipients, who joined the campaign's recipient list.
    stored = (await client.get(f"{base}/campaigns/{campaign['id']}", headers=h)).json()
    contacts = (await client.get(f"{base}/contacts", headers=h)).json()["data"]
    ada = next(c for c in contacts if c["email"] == "ada@example.com")
    assert ada["first_name"] == "Ada"
    assert ada["attributes"] == {"store": "Leeds"}
    listed = (await client.get(f"{base}/lists/{stored['list_id']}", headers=h)).json()
    assert listed["contacts_count"] == 2

    batch = (await client.get(f"{base}/broadcasts/{body['batchId']}", headers=h)).json()
    assert (batch["status"], batch["sent_count"], batch["campaign_id"]) == (
        "SENT",
        2,
        campaign["id"],
    )


async def test_a_send_time_schedules_the_invites(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _campaign(client, org)
    later = datetime.now(UTC) + timedelta(hours=2)
    response = await client.post(
        PATH,
        headers=org.bearer,
        json={
            "campaignId": "nps-email",
            "recipients": [{"variables": {"email": "ada@example.com"}}],
            # No offset: the field's name says UTC.
            "sendTimeUtc": later.replace(tzinfo=None).isoformat(),
        },
    )
    assert response.status_code == 202, response.text
    await drain()
    base, h = f"/v1/orgs/{org.id}", org.bearer
    batch = (await client.get(f"{base}/broadcasts/{response.json()['batchId']}", headers=h)).json()
    assert batch["status"] == "SCHEDULED"
    assert abs(datetime.fromisoformat(batch["scheduled_at"]) - later) < timedelta(seconds=1)
    assert (await client.get(f"{base}/sink/messages", headers=h)).json()["data"] == []


async def test_an_sms_campaign_needs_a_phone_and_the_campaign_id_may_be_the_tidings_id(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    campaign = await _campaign(client, org, channel="sms")
    response = await client.post(
        PATH,
        headers=org.bearer,
        json={
            "campaignId": campaign["id"],  # a number, cast to the id it names
            "recipients": [
                {"variables": {"phone": "+447911123456", "store": "Leeds"}},
                {"variables": {"email": "no-phone@example.com"}},
            ],
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1, response.text
    assert "phone is required" in response.json()["skippedRecipients"][0]["reason"]
    await drain()
    sunk = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()
    [message] = sunk["data"]
    assert message["recipient"] == "+447911123456"
    assert message["content"].startswith("Survey for Leeds: http")


def _error_shape(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "statusCode"}
    assert isinstance(body["error"], str)
    assert body["error"]
    assert body["statusCode"] == status


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer tdg_live_nonsense"}, 401),
    ],
)
async def test_bad_credentials_answer_401_in_the_documented_shape(
    client: httpx.AsyncClient, db: Database, headers: dict[str, str], status: int
) -> None:
    response = await client.post(PATH, headers=headers, json={"campaignId": "x"})
    _error_shape(response, status)


async def test_errors_answer_in_the_documented_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _campaign(client, org)
    reader = await client.post(
        f"/v1/orgs/{org.id}/keys", headers=org.bearer, json={"name": "r", "scopes": ["read"]}
    )
    read_only = {"Authorization": f"Bearer {reader.json()['api_key']}"}
    good = {"campaignId": "nps-email", "recipients": [{"variables": {"email": "a@example.com"}}]}

    _error_shape(await client.post(PATH, headers=read_only, json=good), 403)
    _error_shape(
        await client.post(PATH, headers=org.bearer, json={**good, "campaignId": "nope"}), 404
    )
    other_survey = PATH.replace("s-7", "s-8")
    _error_shape(await client.post(other_survey, headers=org.bearer, json=good), 404)
    other = await make_org(db, "Other")
    _error_shape(await client.post(PATH, headers=other.bearer, json=good), 404)
    _error_shape(await client.post(PATH, headers=org.bearer, json={"recipients": []}), 400)
    malformed = await client.post(
        PATH, headers={**org.bearer, "Content-Type": "application/json"}, content=b"{not json"
    )
    _error_shape(malformed, 400)
    bad_time = await client.post(PATH, headers=org.bearer, json={**good, "sendTimeUtc": "soon"})
    _error_shape(bad_time, 400)


async def test_an_invite_is_at_most_two_transactions(
    client: httpx.AsyncClient, db: Database, settings: Settings, apps: Any
) -> None:
    """Authentication reads in one; the invite (contacts, the campaign's recipient list on
    first use, the broadcast, the key's use) writes in the other."""
    org = await make_org(db)
    await _campaign(client, org)
    engine = apps.for_settings(settings).state.db.engine.sync_engine
    begun: list[int] = []

    def count(_connection: object) -> None:
        begun.append(1)

    for n, first_use in enumerate((True, False)):
        if first_use:  # the key's use is due to be recorded, the recipient list to be made
            async with db.transaction() as session:
                await session.execute(sa.update(ApiKey).values(last_used_at=None))
        body = {"campaignId": "nps-email", "recipients": [
            {"variables": {"email": f"t{n}-{i}@example.com", "store": "Leeds"}} for i in range(3)
        ]}  # fmt: skip
        begun.clear()
        sa.event.listen(engine, "begin", count)
        try:
            response = await client.post(PATH, headers=org.bearer, json=body)
        finally:
            sa.event.remove(engine, "begin", count)
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] == 3
        assert len(begun) <= 2, (first_use, len(begun))
