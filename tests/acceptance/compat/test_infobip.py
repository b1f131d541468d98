"""Seed 003 (SMS invite) under /compat/infobip: the document's example request, its
response field by field, and its error shapes."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.support.factories import OrgWithKey, make_org
from tidings.content import sms
from tidings.db.engine import Database
from tidings.outbox.models import Message
from tidings.outbox.status import MessageStatus
from tidings.settings import Settings

Drain = Callable[[], Awaitable[None]]
APP_KEY = "0F3C3F29829FAB88714BA205BEC6D28F"
PATH = f"/compat/infobip/omnichat/1/applications/{APP_KEY}/integrations/FACEBOOK/invite"
EXAMPLE = {
    "to": "41793026727",
    "linkPlaceholder": "<link>",
    "message": "Hello, if you'd like to hear more about Foo, follow us at <link>",
}


async def _application(client: httpx.AsyncClient, org: OrgWithKey) -> dict[str, Any]:
    response = await client.post(
        f"/v1/orgs/{org.id}/applications",
        headers=org.bearer,
        json={
            "key": APP_KEY,
            "name": "Foo support",
            "sms_sender": "Foo",
            "integrations": [
                {"type": "FACEBOOK", "target_url": "https://m.me/foo.support"},
                {"type": "WHATSAPP", "target_url": "https://wa.me/41790000000"},
            ],
        },
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_the_documented_example_sends_one_sms_with_a_working_invite_link(
    client: httpx.AsyncClient, db: Database, drain: Drain, settings: Settings
) -> None:
    org = await make_org(db)
    await _application(client, org)
    response = await client.post(PATH, headers=org.basic, json=EXAMPLE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"to", "messageCount", "messageId", "status"}
    assert body["to"] == "41793026727"
    assert isinstance(body["messageId"], str)
    assert body["messageId"]
    assert body["status"] == {
        "groupId": 1,
        "groupName": "PENDING",
        "id": 7,
        "name": "PENDING_ENROUTE",
        "description": "Message sent to next instance",
    }

    await drain()
    base, h = f"/v1/orgs/{org.id}", org.bearer
    [sunk] = (await client.get(f"{base}/sink/messages", headers=h)).json()["data"]
    assert sunk["recipient"] == "+41793026727"
    assert sunk["content"].startswith("Hello, if you'd like to hear more about Foo, follow us at ")
    assert "<link>" not in sunk["content"]
    assert body["messageCount"] == sunk["segments"] == sms.shape(sunk["content"]).segments
    link = re.search(r"(http\S+/l/\S+)$", sunk["content"])
    assert link is not None
    follow = await client.get(link.group(1).removeprefix(settings.public_url))
    assert follow.status_code == 302
    assert follow.headers["location"] == "https://m.me/foo.support"

    logs = await client.get(
        "/compat/infobip/sms/1/logs", headers=org.basic, params={"messageId": body["messageId"]}
    )
    assert logs.status_code == 200, logs.text
    [entry] = logs.json()["results"]
    assert entry["messageId"] == body["messageId"]
    assert entry["to"] == "41793026727"
    assert entry["smsCount"] == body["messageCount"]
    assert entry["status"]["groupName"] == "PENDING"  # sent, no delivery report yet
    assert entry["sentAt"] is not None
    assert entry["doneAt"] is None  # PENDING is not done, though sent

    # A delivery report makes it final: done when the report said so.
    delivered_at = datetime(2026, 11, 22, 4, 0, 5, tzinfo=UTC)
    async with db.transaction() as session:
        message = await session.get_one(Message, int(body["messageId"]))
        message.status, message.delivered_at = MessageStatus.DELIVERED, delivered_at
    logs = await client.get(
        "/compat/infobip/sms/1/logs", headers=org.basic, params={"messageId": body["messageId"]}
    )
    [entry] = logs.json()["results"]
    assert entry["status"]["groupName"] == "DELIVERED"
    assert datetime.fromisoformat(entry["doneAt"]) == delivered_at


async def test_each_invite_gets_its_own_link_and_the_placeholder_may_repeat(
    client: httpx.AsyncClient, db: Database, drain: Drain
) -> None:
    org = await make_org(db)
    await _application(client, org)
    whatsapp = PATH.replace("FACEBOOK", "whatsapp")  # the type is matched case-insensitively
    twice = {**EXAMPLE, "linkPlaceholder": "{{x}}", "message": "Chat {{x}} or later {{x}} 😀"}
    first = await client.post(whatsapp, headers=org.basic, json=twice)
    second = await client.post(whatsapp, headers=org.basic, json={**twice, "to": 41793026728})
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    await drain()
    sunk = (await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)).json()
    texts = [m["content"] for m in sunk["data"]]
    links = [re.findall(r"http\S+/l/\S+", text) for text in texts]
    assert all(len(found) == 2 and found[0] == found[1] for found in links)
    assert links[0][0] != links[1][0]
    assert all(text.endswith(" 😀") and "{{x}}" not in text for text in texts)
    assert first.json()["messageCount"] == sms.shape(texts[0]).segments  # UCS-2: the emoji


def _error_shape(response: httpx.Response, status: int, message_id: str, text: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {
        "requestError": {"serviceException": {"messageId": message_id, "text": text}}
    }


@pytest.mark.parametrize(
    "change",
    [
        {"message": "no placeholder here"},
        {"to": "not a number"},
        {"to": "123"},
        {"message": None},
        {"linkPlaceholder": ""},
    ],
)
async def test_a_bad_request_answers_400_bad_request(
    client: httpx.AsyncClient, db: Database, change: dict[str, Any]
) -> None:
    org = await make_org(db)
    await _application(client, org)
    response = await client.post(PATH, headers=org.basic, json={**EXAMPLE, **change})
    _error_shape(response, 400, "BAD_REQUEST", "Bad request")


async def test_errors_answer_in_the_documented_shape(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    await _application(client, org)
    _error_shape(
        await client.post(PATH, json=EXAMPLE), 401, "UNAUTHORIZED", "Invalid login details"
    )
    wrong = {**org.basic, "Authorization": org.basic["Authorization"][:-4] + "AAA="}
    _error_shape(
        await client.post(PATH, headers=wrong, json=EXAMPLE),
        401,
        "UNAUTHORIZED",
        "Invalid login details",
    )
    unknown_app = PATH.replace(APP_KEY, "NOPE")
    _error_shape(
        await client.post(unknown_app, headers=org.basic, json=EXAMPLE), 404, "NOT_FOUND",
        "Not found",
    )  # fmt: skip
    unknown_type = PATH.replace("FACEBOOK", "LINE")
    _error_shape(
        await client.post(unknown_type, headers=org.basic, json=EXAMPLE), 404, "NOT_FOUND",
        "Not found",
    )  # fmt: skip
    other = await make_org(db, "Other")
    _error_shape(
        await client.post(PATH, headers=other.basic, json=EXAMPLE), 404, "NOT_FOUND", "Not found"
    )
