"""The sending API end to end: template → campaign → broadcast → dispatcher → sink."""

from __future__ import annotations

import email
from email import policy
from typing import Any

import httpx

from tests.support.factories import make_org, upsert
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher


async def _post(http: httpx.AsyncClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = await http.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    return response.json()


async def test_a_broadcast_reaches_the_sink_personalised(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    panel = await _post(client, f"{base}/lists", h, {"name": "panel"})
    await upsert(
        client,
        org,
        [
            {"email": f"u{i}@example.com", "first_name": f"U{i}", "attributes": {"score": i}}
            for i in range(40)
        ],
        list_ids=[panel["id"]],
    )
    template = await _post(
        client,
        f"{base}/templates",
        h,
        {
            "name": "t",
            "channel": "email",
            "subject": "Score for {{ first_name }}",
            "text": "{{ first_name }} scored {{ score }}.",
        },
    )
    campaign = await _post(
        client,
        f"{base}/campaigns",
        h,
        {
            "name": "c",
            "channel": "email",
            "template_id": template["id"],
            "from_email": "team@acme.example",
            "from_name": "Acme",
        },
    )
    broadcast = await _post(
        client,
        f"{base}/broadcasts",
        h,
        {
            "name": "b",
            "campaign_id": campaign["id"],
            "list_ids": [panel["id"]],
        },
    )
    assert broadcast["status"] == "SCHEDULED"

    await Dispatcher(db, renderer=Renderer()).drain()

    done = (await client.get(f"{base}/broadcasts/{broadcast['id']}", headers=h)).json()
    assert (done["status"], done["recipients_count"], done["sent_count"]) == ("SENT", 40, 40)
    sunk: list[dict[str, Any]] = []
    cursor = None
    while True:
        url = f"{base}/sink/messages?limit=15" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url, headers=h)).json()
        sunk += page["data"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(sunk) == 40
    for item in sunk:
        parsed = email.message_from_bytes(item["content"].encode(), policy=policy.default)
        i = int(item["recipient"][1:].split("@")[0])
        assert parsed["Subject"] == f"Score for U{i}"
        assert parsed.get_content().strip() == f"U{i} scored {i}."
    sent = (await client.get(f"{base}/messages?status=sent&limit=100", headers=h)).json()
    assert len(sent["data"]) == 40
    one = (await client.get(f"{base}/messages/{sent['data'][0]['id']}", headers=h)).json()
    assert one["provider_id"].startswith("sink-")


async def test_preview_is_strict_and_names_the_variable(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    template = await _post(
        client,
        f"{base}/templates",
        h,
        {
            "name": "t",
            "channel": "sms",
            "text": "Hi {{ first_name }}, code {{ code }}",
        },
    )
    ok = await _post(
        client,
        f"{base}/templates/{template['id']}/preview",
        h,
        {"variables": {"first_name": "Zoë", "code": "42"}},
    )
    assert (ok["text"], ok["sms_segments"], ok["sms_encoding"]) == ("Hi Zoë, code 42", 1, "UCS-2")
    missing = await client.post(
        f"{base}/templates/{template['id']}/preview",
        json={"variables": {"first_name": "A"}},
        headers=h,
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "text"
    assert "code" in missing.json()["errors"][0]["reason"]


async def test_a_template_that_does_not_compile_is_refused(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    response = await client.post(
        f"/v1/orgs/{org.id}/templates",
        json={"name": "t", "channel": "email", "subject": "{{ broken", "text": "ok"},
        headers=org.bearer,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "subject"


async def test_pause_resume_cancel_follow_the_table(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    base, h = f"/v1/orgs/{org.id}", org.bearer
    await upsert(client, org, [{"email": f"x{i}@example.com"} for i in range(5)])
    template = await _post(
        client,
        f"{base}/templates",
        h,
        {"name": "t", "channel": "email", "subject": "s", "text": "t"},
    )
    campaign = await _post(
        client,
        f"{base}/campaigns",
        h,
        {
            "name": "c",
            "channel": "email",
            "template_id": template["id"],
            "from_email": "team@acme.example",
        },
    )
    draft = await _post(
        client,
        f"{base}/broadcasts",
        h,
        {"name": "b", "campaign_id": campaign["id"], "send_to_all": True, "draft": True},
    )
    assert draft["status"] == "DRAFT"
    bad = await client.post(f"{base}/broadcasts/{draft['id']}/pause", headers=h)
    assert bad.status_code == 409
    scheduled = await _post(client, f"{base}/broadcasts/{draft['id']}/send", h, None)
    assert scheduled["status"] == "SCHEDULED"
    paused = await _post(client, f"{base}/broadcasts/{draft['id']}/pause", h, None)
    assert paused["status"] == "PAUSED"
    await Dispatcher(db, renderer=Renderer()).drain()  # a paused broadcast does not start
    still = (await client.get(f"{base}/broadcasts/{draft['id']}", headers=h)).json()
    assert (still["status"], still["sent_count"]) == ("PAUSED", 0)
    resumed = await _post(client, f"{base}/broadcasts/{draft['id']}/resume", h, None)
    assert resumed["status"] == "SCHEDULED"
    cancelled = await _post(client, f"{base}/broadcasts/{draft['id']}/cancel", h, None)
    assert cancelled["status"] == "CANCELLED"
    again = await client.post(f"{base}/broadcasts/{draft['id']}/resume", headers=h)
    assert again.status_code == 409
