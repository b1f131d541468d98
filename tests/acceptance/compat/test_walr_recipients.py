"""Seed 000's recipients as the document writes them: variables of any name merged into the
invitation, counts that add up to the recipients sent (each skipped one listed once, a
repeated one as a duplicate), and nothing made when nobody is accepted."""

from __future__ import annotations

import email
from collections.abc import Awaitable, Callable
from email import policy
from typing import Any

import httpx
from sqlalchemy import func, select

from tests.support.factories import OrgWithKey, make_org
from tidings.broadcasts.models import Broadcast
from tidings.contacts.models import Contact
from tidings.db.engine import Database
from tidings.lists.models import ContactList
from tidings.outbox.models import Message

Drain = Callable[[], Awaitable[None]]
PATH = "/compat/walr/projects/p-1/surveys/s-1/invites"


async def _campaign(client: httpx.AsyncClient, org: OrgWithKey, text: str) -> int:
    base, h = f"/v1/orgs/{org.id}", org.bearer
    template = await client.post(
        f"{base}/templates",
        headers=h,
        json={"name": "t", "channel": "email", "subject": "A minute?", "text": text},
    )
    assert template.status_code == 201, template.text
    campaign = await client.post(
        f"{base}/campaigns",
        headers=h,
        json={
            "name": "Survey",
            "channel": "email",
            "template_id": template.json()["id"],
            "from_email": "research@acme.example",
            "external_id": "survey",
            "project_ref": "p-1",
            "survey_ref": "s-1",
            "invite_url": "https://survey.example/?c={{ vars['customer-id'] | urlencode }}",
        },
    )
    assert campaign.status_code == 201, campaign.text
    campaign_id: int = campaign.json()["id"]
    return campaign_id


async def _invite(
    client: httpx.AsyncClient, org: OrgWithKey, recipients: list[Any]
) -> dict[str, Any]:
    response = await client.post(
        PATH, headers=org.bearer, json={"campaignId": "survey", "recipients": recipients}
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    # Never negative, and every recipient counted once: accepted or skipped.
    assert body["accepted"] >= 0
    assert body["accepted"] + body["skipped"] == len(recipients)
    assert body["skipped"] == len(body["skippedRecipients"])
    indexes = [row["index"] for row in body["skippedRecipients"]]
    assert indexes == sorted(set(indexes))
    return body


async def _count(db: Database, model: Any) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_variables_of_any_name_merge_into_the_invitation(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _campaign(
        client,
        org,
        'Hi {{ vars["Store Name"] }} #{{ vars["1st"] }} {{ vars["Città"] }} {{ plan }}: '
        "{{ invite_link }}",
    )
    variables = {
        "email": "ada@example.com",
        "Store Name": "Leeds Central",
        "customer-id": "C 42",
        "1st": "one",
        "Città": "Milano",
        "plan": "gold",
    }
    body = await _invite(client, org, [{"variables": variables}])
    assert (body["accepted"], body["skippedRecipients"]) == (1, [])
    assert body["batchId"] is not None

    await drain()
    (sunk,) = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()[
        "data"
    ]
    parsed = email.message_from_bytes(sunk["content"].encode(), policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.startswith("Hi Leeds Central #one Milano gold: http")
    link = text.split(": ", 1)[1].strip()
    follow = await client.get("/" + link.split("/", 3)[3])
    assert follow.headers["location"] == "https://survey.example/?c=C%2042"

    contacts = (await client.get(f"/v1/orgs/{org.id}/contacts", headers=org.bearer)).json()
    # Attribute names stay identifiers (segments and CSV columns name them); the others
    # are the message's variables.
    assert contacts["data"][0]["attributes"] == {"plan": "gold"}


async def test_a_recipient_is_skipped_once_whatever_its_problems(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _campaign(client, org, "Hi: {{ invite_link }}")
    body = await _invite(
        client,
        org,
        [
            {"variables": {"email": "not an address", "first_name": "Two\nproblems"}},
            {"variables": {"email": "ada@example.com"}},
            {"variables": {}},
        ],
    )
    assert (body["accepted"], body["skipped"]) == (1, 2)
    first, second = body["skippedRecipients"]
    assert first["index"] == 0
    assert "recipients[0].email" in first["reason"]
    assert "recipients[0].first_name" in first["reason"]
    assert second["index"] == 2


async def test_a_repeated_recipient_is_one_invite_and_one_duplicate(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _campaign(client, org, "Hi {{ first_name }}: {{ invite_link }}")
    body = await _invite(
        client,
        org,
        [
            {"variables": {"email": "ada@example.com", "first_name": "Ada"}},
            {"variables": {"email": "alan@example.com"}},
            {"variables": {"email": " ADA@Example.com", "first_name": "Again"}},
        ],
    )
    assert (body["accepted"], body["skipped"]) == (2, 1)
    assert body["skippedRecipients"] == [
        {"index": 2, "reason": "recipients[2]: duplicate of recipients[0]"}
    ]
    async with db.session() as session:
        variables = list(await session.scalars(select(Message.variables)))
    assert len(variables) == 2
    assert {"email": "ada@example.com", "first_name": "Ada"} in variables


async def test_nothing_accepted_makes_nothing(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    await _campaign(client, org, "Hi: {{ invite_link }}")
    lists_before = await _count(db, ContactList)
    for recipients in (
        [{"variables": {"first_name": "No address"}}, None],
        [{"variables": {"email": "not an address"}}, {"variables": {"email": "@"}}],
    ):
        body = await _invite(client, org, recipients)
        assert (body["batchId"], body["accepted"], body["skipped"]) == (None, 0, 2)
    assert await _count(db, Broadcast) == 0
    assert await _count(db, Message) == 0
    assert await _count(db, Contact) == 0
    assert await _count(db, ContactList) == lists_before  # no recipient list either

    # The org is not stuck: the next good request makes the list and the broadcast.
    body = await _invite(client, org, [{"variables": {"email": "ada@example.com"}}])
    assert (body["accepted"], body["batchId"] is not None) == (1, True)
    assert await _count(db, ContactList) == lists_before + 1
