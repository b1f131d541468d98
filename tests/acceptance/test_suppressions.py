"""Suppressions: the API, the skip rule on every path, the pre-send check mid-broadcast,
and STOP / START through the inbound SMS endpoint."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
from sqlalchemy import select

from tests.support.factories import OrgWithKey, make_org
from tests.support.sending import audience, broadcast_now, email_campaign
from tidings.contacts.models import Contact
from tidings.content.render import Renderer
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher, DispatcherConfig
from tidings.outbox.models import Message
from tidings.suppressions import service as suppressions

TOKEN = "inbound-token-0123456789abcdef"


def _path(org: OrgWithKey, rest: str = "") -> str:
    return f"/v1/orgs/{org.id}/suppressions{rest}"


async def _add(client: httpx.AsyncClient, org: OrgWithKey, rows: list[Any]) -> dict[str, Any]:
    response = await client.post(_path(org), json={"suppressions": rows}, headers=org.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _messages(db: Database, broadcast_id: int) -> dict[str, tuple[str, str | None]]:
    async with db.session() as session:
        rows = await session.execute(
            select(Message.recipient, Message.status, Message.reason).where(
                Message.broadcast_id == broadcast_id
            )
        )
        return {r.recipient: (r.status, r.reason) for r in rows}


async def test_add_list_read_remove(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db, phone_region="CH")
    report = await _add(
        client,
        org,
        [
            {"channel": "email", "address": " Gone@Example.COM ", "reason": "hard_bounce"},
            {"channel": "email", "address": "not an address"},
            {"channel": "sms", "address": "079 123 45 67", "note": "asked by phone"},
            {"channel": "fax", "address": "123"},
            {"channel": "email", "address": "gone@example.com", "reason": "complaint"},
        ],
    )
    assert (report["created"], report["failed"]) == (2, 2)
    statuses = [(r["index"], r["status"]) for r in report["results"]]
    assert statuses == [(0, "created"), (1, "failed"), (2, "created"), (3, "failed"),
                        (4, "created")]  # fmt: skip
    assert {(e["index"], e["field"]) for e in report["errors"]} == {(1, "address"), (3, "channel")}
    again = await _add(client, org, [{"channel": "sms", "address": "+41791234567"}])
    assert (again["created"], again["existing"], again["results"][0]["status"]) == (0, 1, "exists")

    listed = (await client.get(_path(org), headers=org.bearer)).json()["data"]
    # One row per address: the batch's last row won; the phone was read in the org's region.
    assert [(s["channel"], s["address"], s["reason"]) for s in listed] == [
        ("email", "gone@example.com", "complaint"),
        ("sms", "+41791234567", "manual"),
    ]
    sms_only = await client.get(_path(org), params={"channel": "sms"}, headers=org.bearer)
    assert [s["address"] for s in sms_only.json()["data"]] == ["+41791234567"]
    paged = await client.get(_path(org), params={"limit": 1}, headers=org.bearer)
    assert paged.json()["next_cursor"] is not None
    one = await client.get(_path(org, f"/{listed[0]['id']}"), headers=org.bearer)
    assert one.json()["address"] == "gone@example.com"

    gone = await client.delete(_path(org, f"/{listed[0]['id']}"), headers=org.bearer)
    assert gone.status_code == 204
    twice = await client.delete(_path(org, f"/{listed[0]['id']}"), headers=org.bearer)
    assert twice.status_code == 404
    by_address = await client.delete(
        _path(org), params={"channel": "sms", "address": "+41 79 123 45 67"}, headers=org.bearer
    )
    assert by_address.status_code == 204
    assert (await client.get(_path(org), headers=org.bearer)).json()["data"] == []


async def test_batch_limit_and_read_only_keys(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    rows = [{"channel": "email", "address": f"p{n}@example.com"} for n in range(1_001)]
    too_many = await client.post(_path(org), json={"suppressions": rows}, headers=org.bearer)
    assert too_many.status_code == 422
    assert (await _add(client, org, rows[:1_000]))["created"] == 1_000


async def test_export_is_csv_safe_against_formulas(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    notes = ['=HYPERLINK("http://x")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", 'plain, "q"']
    async with db.session() as session:  # the API trims notes: a report's text may not be
        for n, note in enumerate(notes):
            await suppressions.suppress(
                session, org_id=org.id, channel="email", address=f"p{n}@example.com",
                reason="manual", source="test", note=note,
            )  # fmt: skip
        await session.commit()
    await _add(client, org, [{"channel": "email", "address": "=cmd@example.com", "note": "-1"}])
    response = await client.get(_path(org, "/export"), headers=org.bearer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text, newline="")))
    assert rows[0] == ["id", "channel", "address", "reason", "source", "note", "created_at"]
    exported = {row[2]: row[5] for row in rows[1:]}
    assert [exported[f"p{n}@example.com"] for n in range(len(notes))] == [
        "'=HYPERLINK(\"http://x\")", "'+1+1", "'-2", "'@SUM(A1)", "'\tx", "'\rx", 'plain, "q"',
    ]  # fmt: skip
    assert exported["'=cmd@example.com"] == "'-1"
    for row in rows[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


async def test_address_suppressed_mid_broadcast_is_not_sent_to(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    rows = [{"email": f"p{n}@example.com", "first_name": f"P{n}"} for n in range(6)]
    people = await audience(db, org, rows)
    broadcast_id = await broadcast_now(db, org, campaign_id, people.list_id)
    dispatcher = Dispatcher(db, renderer=Renderer(), config=DispatcherConfig(batch_size=2))
    assert await dispatcher.tick()  # started, and the first two sent
    sent_first = {r for r, (s, _) in (await _messages(db, broadcast_id)).items() if s == "sent"}
    assert len(sent_first) == 2
    late = next(r for r in sorted(await _messages(db, broadcast_id)) if r not in sent_first)
    await _add(client, org, [{"channel": "email", "address": late.upper()}])
    await dispatcher.drain()

    final = await _messages(db, broadcast_id)
    assert final[late] == ("skipped", "suppressed: manual")
    assert sorted(s for s, _ in final.values()) == ["sent"] * 5 + ["skipped"]
    sink = await client.get(f"/v1/orgs/{org.id}/sink/messages", headers=org.bearer)
    assert late not in sink.text
    assert len(sink.json()["data"]) == 5
    got = await client.get(f"/v1/orgs/{org.id}/broadcasts/{broadcast_id}", headers=org.bearer)
    done = got.json()
    assert (done["status"], done["sent_count"], done["skipped_count"]) == ("SENT", 5, 1)
    assert (done["failed_count"], done["recipients_count"]) == (0, 5)
    async with db.session() as session:
        attempts = await session.scalar(select(Message.attempts).where(Message.recipient == late))
    assert attempts == 0  # skipped before sending: no attempt used


async def test_second_broadcast_skips_earlier_bounces_and_complaints(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    rows = [{"email": f"p{n}@example.com"} for n in range(5)]
    people = await audience(db, org, rows)
    first = await broadcast_now(db, org, await email_campaign(db, org), people.list_id)
    await Dispatcher(db, renderer=Renderer()).drain()
    assert {s for s, _ in (await _messages(db, first)).values()} == {"sent"}
    # What delivery reports do after the first broadcast (query helpers, no commit).
    async with db.session() as session:
        for address, reason in (
            ("p0@example.com", "hard_bounce"),
            ("p1@example.com", "complaint"),
            ("p2@example.com", "hard_bounce"),
            ("p3@example.com", "unsubscribed"),  # marketing only
        ):
            await suppressions.suppress(
                session, org_id=org.id, channel="email", address=address, reason=reason,
                source="dsn",
            )  # fmt: skip
        await session.commit()

    for purpose, p3 in (
        ("transactional", ("sent", None)),
        ("marketing", ("skipped", "suppressed: unsubscribed")),
    ):
        campaign_id = await email_campaign(db, org, purpose=purpose, name=purpose)
        second = await broadcast_now(db, org, campaign_id, people.list_id)
        await Dispatcher(db, renderer=Renderer()).drain()
        assert await _messages(db, second) == {
            "p0@example.com": ("skipped", "suppressed: hard_bounce"),
            "p1@example.com": ("skipped", "suppressed: complaint"),
            "p2@example.com": ("skipped", "suppressed: hard_bounce"),
            "p3@example.com": p3,
            "p4@example.com": ("sent", None),
        }, purpose


async def test_single_sends_and_explicit_recipients_are_skipped(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    campaign_id = await email_campaign(db, org)
    await _add(client, org, [{"channel": "email", "address": "gone@example.com",
                              "reason": "hard_bounce"}])  # fmt: skip
    single = await client.post(
        f"/v1/orgs/{org.id}/messages",
        json={"campaign_id": campaign_id, "to": {"email": "Gone@example.com"}},
        headers=org.bearer,
    )
    assert single.status_code == 201, single.text
    assert (single.json()["status"], single.json()["reason"]) == (
        "skipped",
        "suppressed: hard_bounce",
    )
    created = await client.post(
        f"/v1/orgs/{org.id}/broadcasts",
        json={
            "name": "explicit",
            "campaign_id": campaign_id,
            "recipients": [{"email": "gone@example.com"}, {"email": "here@example.com"}],
        },
        headers=org.bearer,
    )
    assert created.status_code == 201, created.text
    await Dispatcher(db, renderer=Renderer()).drain()
    assert await _messages(db, created.json()["id"]) == {
        "gone@example.com": ("skipped", "suppressed: hard_bounce"),
        "here@example.com": ("sent", None),
    }


async def _sms_connection(client: httpx.AsyncClient, org: OrgWithKey) -> int:
    response = await client.post(
        f"/v1/orgs/{org.id}/connections",
        json={"name": "gateway", "channel": "sms", "kind": "sink",
              "credentials": {"inbound_token": TOKEN}},
        headers=org.bearer,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json()["credentials_set"] == ["inbound_token"]
    assert TOKEN not in response.text
    return int(response.json()["id"])


async def _state(db: Database, org: OrgWithKey, phone: str) -> tuple[str, str | None]:
    async with db.session() as session:
        status = await session.scalar(
            select(Contact.sms_status).where(Contact.org_id == org.id, Contact.phone == phone)
        )
        listed = await suppressions.reasons(
            session, org_id=org.id, channel="sms", addresses=[phone]
        )
    assert status is not None
    return status, listed.get(phone)


async def test_stop_and_start_through_the_inbound_endpoint(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    other = await make_org(db, "Other")
    phone = "+41791234567"
    for owner in (org, other):
        response = await client.post(
            f"/v1/orgs/{owner.id}/contacts", json={"contacts": [{"phone": phone}]},
            headers=owner.bearer,
        )  # fmt: skip
        assert response.status_code == 200
    connection_id = await _sms_connection(client, org)
    url = f"/inbound/sms/{connection_id}/{TOKEN}"

    stop = await client.post(url, json={"from": phone, "text": "  Stop "})
    assert (stop.status_code, stop.json()) == (200, {"action": "unsubscribed"})
    assert await _state(db, org, phone) == ("unsubscribed", "stop_keyword")
    assert await _state(db, other, phone) == ("subscribed", None)  # another org's contact

    start = await client.post(url, data={"From": phone, "Body": "START"})  # Twilio's form
    assert start.status_code == 200
    assert start.headers["content-type"].startswith("text/xml")
    assert await _state(db, org, phone) == ("subscribed", None)

    infobip = {"results": [{"from": phone[1:], "text": "ARRÊT", "cleanText": "ARRÊT"}]}
    assert (await client.post(url, json=infobip)).json() == {"action": "unsubscribed"}
    assert await _state(db, org, phone) == ("unsubscribed", "stop_keyword")

    chat = await client.post(url, json={"from": phone, "text": "please start"})
    assert chat.json() == {"action": "ignored"}
    assert await _state(db, org, phone) == ("unsubscribed", "stop_keyword")

    for bad in (f"/inbound/sms/{connection_id}/{'x' * 30}", f"/inbound/sms/999999/{TOKEN}"):
        refused = await client.post(bad, json={"from": phone, "text": "START"})
        assert refused.status_code == 404
    assert await _state(db, org, phone) == ("unsubscribed", "stop_keyword")


async def test_start_leaves_other_reasons_alone(client: httpx.AsyncClient, db: Database) -> None:
    org = await make_org(db)
    phone = "+41791234568"
    await client.post(
        f"/v1/orgs/{org.id}/contacts", json={"contacts": [{"phone": phone}]}, headers=org.bearer
    )
    await _add(client, org, [{"channel": "sms", "address": phone, "reason": "hard_bounce"}])
    connection_id = await _sms_connection(client, org)
    url = f"/inbound/sms/{connection_id}/{TOKEN}"
    await client.post(url, json={"from": phone, "text": "stop"})
    assert await _state(db, org, phone) == ("unsubscribed", "hard_bounce")
    await client.post(url, json={"from": phone, "text": "start"})
    assert await _state(db, org, phone) == ("subscribed", "hard_bounce")


async def test_soft_bounces_suppress_past_the_limit(db: Database) -> None:
    org = await make_org(db)
    address = "flaky@example.com"

    async def bounce() -> bool:
        async with db.session() as session:
            done = await suppressions.note_soft_bounce(
                session, org_id=org.id, channel="email", address=address, limit=3, source="dsn"
            )
            await session.commit()
        return done

    assert [await bounce(), await bounce()] == [False, False]
    async with db.session() as session:
        await suppressions.reset_soft_bounces(session, org_id=org.id, address=address)
        await session.commit()
    assert [await bounce(), await bounce(), await bounce()] == [False, False, True]
    async with db.session() as session:
        assert await suppressions.is_suppressed(
            session, org_id=org.id, channel="email", address=address, purpose="transactional"
        )
