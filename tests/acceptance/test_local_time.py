"""Each recipient's local time, quiet hours and the estimate, end to end: broadcasts made
through the service or the API, sent by the dispatcher on a controllable clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from tests.support.factories import make_org
from tests.support.sending import audience, email_campaign
from tidings.broadcasts import service as broadcasts
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.outbox.models import Message
from tidings.testing import Clock

DAY = date(2026, 3, 29)  # Europe springs forward this morning


def _zone_rows(zone: str, n: int) -> list[dict[str, Any]]:
    """200 contacts in each of five zones: three by their own timezone, one by its phone's
    country (Japan has one zone), one by the org's (no zone, no phone)."""
    if zone == "Asia/Tokyo":
        return [{"email": f"tokyo{i}@example.com", "phone": f"+8190{12340000 + i}"}
                for i in range(n)]  # fmt: skip
    if zone == "America/Los_Angeles":
        return [{"email": f"org{i}@example.com"} for i in range(n)]
    tag = zone.rsplit("/", 1)[1].lower()
    return [{"email": f"{tag}{i}@example.com", "timezone": zone} for i in range(n)]


NINE_THIRTY = {  # 09:30 on DAY in each zone, in UTC
    "Australia/Sydney": datetime(2026, 3, 28, 22, 30, tzinfo=UTC),  # AEDT, +11
    "Asia/Tokyo": datetime(2026, 3, 29, 0, 30, tzinfo=UTC),  # +9
    "Europe/London": datetime(2026, 3, 29, 8, 30, tzinfo=UTC),  # BST since 01:00 UTC
    "America/New_York": datetime(2026, 3, 29, 13, 30, tzinfo=UTC),  # EDT since 03-08
    "America/Los_Angeles": datetime(2026, 3, 29, 16, 30, tzinfo=UTC),  # PDT, the org's zone
}


async def _sent(db: Database, broadcast_id: int) -> dict[str, datetime]:
    async with db.session() as session:
        rows = await session.execute(
            select(Message.recipient, Message.sent_at).where(
                Message.broadcast_id == broadcast_id, Message.sent_at.is_not(None)
            )
        )
        return {r: at for r, at in rows}  # noqa: C416 — rows


async def test_a_thousand_contacts_in_five_zones_each_get_it_at_09_30_local(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    response = await client.patch(
        f"/v1/orgs/{org.id}", json={"timezone": "America/Los_Angeles"}, headers=org.bearer
    )
    assert response.status_code == 200, response.text
    assert response.json()["timezone"] == "America/Los_Angeles"
    rows = [row for zone in NINE_THIRTY for row in _zone_rows(zone, 200)]
    people = await audience(db, org, rows)
    assert len(people.contact_ids) == 1000
    campaign_id = await email_campaign(db, org)
    clock = Clock(datetime(2026, 3, 28, 12, tzinfo=UTC))
    body = BroadcastCreate(
        name="09:30 local", campaign_id=campaign_id, list_ids=[people.list_id],
        local_time="09:30", local_date=DAY,
    )  # fmt: skip
    async with db.transaction() as session:
        created = await broadcasts.create_broadcast(session, org_id=org.id, body=body, now=clock())
    broadcast_id = created.broadcast.id
    dispatcher = Dispatcher(db, renderer=Renderer(), clock=clock)
    await dispatcher.drain()  # expanded; nothing due yet
    assert await _sent(db, broadcast_id) == {}
    done = 0
    for zone, at in sorted(NINE_THIRTY.items(), key=lambda item: item[1]):
        clock.now = at - timedelta(minutes=1)
        await dispatcher.drain()
        assert len(await _sent(db, broadcast_id)) == done, f"{zone} went early"
        clock.now = at
        await dispatcher.drain()
        sent = await _sent(db, broadcast_id)
        now_sent = {r: t for r, t in sent.items() if t == at}
        assert len(now_sent) == 200, zone
        prefix = _zone_rows(zone, 1)[0]["email"].removesuffix("0@example.com")
        assert all(r.removeprefix(prefix)[0].isdigit() for r in now_sent), zone
        done += 200
    assert len(await _sent(db, broadcast_id)) == 1000


async def test_marketing_waits_for_quiet_hours_to_end_and_transactional_does_not(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    settings = {"timezone": "Europe/Paris", "quiet_hours": {"email": {"start": "21:00",
                                                                      "end": "08:00"}}}  # fmt: skip
    response = await client.patch(f"/v1/orgs/{org.id}", json=settings, headers=org.bearer)
    assert response.status_code == 200, response.text
    people = await audience(db, org, [{"email": f"p{i}@example.com"} for i in range(5)])
    marketing = await email_campaign(db, org, purpose="marketing", name="m")
    transactional = await email_campaign(db, org, purpose="transactional", name="t")
    own = await email_campaign(db, org, purpose="marketing", name="own")
    response = await client.patch(  # its own quiet hours: none
        f"/v1/orgs/{org.id}/campaigns/{own}",
        json={"quiet_hours": {"start": "00:00", "end": "00:00"}},
        headers=org.bearer,
    )
    assert response.status_code == 200, response.text
    clock = Clock(datetime(2026, 3, 28, 22, tzinfo=UTC))  # 23:00 in Paris
    ids = {}
    for name, campaign_id in (("m", marketing), ("t", transactional), ("own", own)):
        async with db.transaction() as session:
            created = await broadcasts.create_broadcast(
                session,
                org_id=org.id,
                body=BroadcastCreate(name=name, campaign_id=campaign_id, list_ids=[people.list_id]),
                now=clock(),
            )
        ids[name] = created.broadcast.id
    dispatcher = Dispatcher(db, renderer=Renderer(), clock=clock)
    await dispatcher.drain()
    assert len(await _sent(db, ids["t"])) == 5  # transactional: at once
    assert len(await _sent(db, ids["own"])) == 5  # its campaign has no quiet hours
    assert await _sent(db, ids["m"]) == {}  # marketing: waits
    clock.now = datetime(2026, 3, 29, 5, 59, tzinfo=UTC)  # 07:59 CEST
    await dispatcher.drain()
    assert await _sent(db, ids["m"]) == {}
    clock.now = datetime(2026, 3, 29, 6, tzinfo=UTC)  # 08:00 CEST: the window opens
    await dispatcher.drain()
    assert set((await _sent(db, ids["m"])).values()) == {clock.now}
    assert len(await _sent(db, ids["m"])) == 5


async def test_estimate_dry_run_and_refusal_up_front(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    people = await audience(db, org, [{"email": f"e{i}@example.com"} for i in range(4)] + [
        {"email": "tokyo@example.com", "timezone": "Asia/Tokyo"}])  # fmt: skip
    campaign_id = await email_campaign(db, org)
    base = f"/v1/orgs/{org.id}/broadcasts"
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()  # ahead in every zone
    body = {"name": "b", "campaign_id": campaign_id, "list_ids": [people.list_id],
            "local_time": "09:30", "local_date": tomorrow}  # fmt: skip
    dry = await client.post(base, json={**body, "dry_run": True}, headers=org.bearer)
    assert dry.status_code == 200, dry.text
    figures = dry.json()
    assert (figures["recipients"], figures["skipped"], figures["cost"]) == ({"email": 5}, {}, 0)
    assert [s["messages"] for s in figures["schedule"]] == [1, 4]  # Tokyo first, then UTC
    assert figures["last_due_at"].startswith(f"{tomorrow}T09:30")
    listed = (await client.get(base, headers=org.bearer)).json()["data"]
    assert listed == []  # a dry run makes nothing
    # Made for real and started: the counters say what waits, and until when.
    made = await client.post(base, json=body, headers=org.bearer)
    assert made.status_code == 201, made.text
    await Dispatcher(db, renderer=Renderer()).drain()
    running = (await client.get(f"{base}/{made.json()['id']}", headers=org.bearer)).json()
    assert (running["status"], running["sent_count"]) == ("SENDING", 0)
    assert running["scheduled_later_count"] == 5
    assert running["last_due_at"] == figures["last_due_at"]
    assert (running["local_time"], running["local_date"]) == ("09:30", tomorrow)
    cancelled = await client.post(f"{base}/{made.json()['id']}/cancel", headers=org.bearer)
    assert cancelled.json()["scheduled_later_count"] == 0
    # Prices set and a balance too small: refused up front, with the figures.
    await client.put(
        f"/v1/orgs/{org.id}/prices",
        json={"prices": [{"channel": "email", "country": "*", "amount": 1}]},
        headers=org.bearer,
    )
    refused = await client.post(base, json=body, headers=org.bearer)
    assert refused.status_code == 402, refused.text
    assert "costs 5 credits" in refused.json()["detail"]
    draft = await client.post(base, json={**body, "draft": True}, headers=org.bearer)
    assert draft.status_code == 201, draft.text
    estimate = await client.post(f"{base}/{draft.json()['id']}/estimate", headers=org.bearer)
    assert estimate.status_code == 200, estimate.text
    assert (estimate.json()["cost"], estimate.json()["covered"]) == (5, False)
    sent = await client.post(f"{base}/{draft.json()['id']}/send", headers=org.bearer)
    assert sent.status_code == 402, sent.text
    other = await make_org(db, "Other")
    assert (
        await client.post(f"{base}/{draft.json()['id']}/estimate", headers=other.bearer)
    ).status_code in (403, 404)


async def test_a_single_marketing_send_inside_quiet_hours_waits(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Single sends are made by the same outbox rule: the org's quiet hours (in its zone,
    the contact having none) hold a marketing message back, not a transactional one."""
    org = await make_org(db)
    now = utcnow()
    window = {"start": (now - timedelta(hours=1)).strftime("%H:%M"),
              "end": (now + timedelta(hours=2)).strftime("%H:%M")}  # fmt: skip
    response = await client.patch(
        f"/v1/orgs/{org.id}",
        json={"timezone": "UTC", "quiet_hours": {"email": window}},
        headers=org.bearer,
    )
    assert response.status_code == 200, response.text
    due = {}
    for purpose in ("marketing", "transactional"):
        campaign_id = await email_campaign(db, org, purpose=purpose, name=purpose)
        sent = await client.post(
            f"/v1/orgs/{org.id}/messages",
            json={"campaign_id": campaign_id, "to": {"email": f"{purpose}@example.com"}},
            headers=org.bearer,
        )
        assert sent.status_code == 201, sent.text
        due[purpose] = datetime.fromisoformat(sent.json()["due_at"])
    assert due["transactional"] <= utcnow()
    assert due["marketing"] > now + timedelta(minutes=110)  # the window's end, ~2 h on
    assert due["marketing"].strftime("%H:%M") == window["end"]


async def test_bad_zone_hours_days_and_local_time_are_422s_naming_the_field(
    client: httpx.AsyncClient, db: Database
) -> None:
    org = await make_org(db)
    for body, field in (
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"quiet_hours": {"email": {"start": "25:00", "end": "08:00"}}}, "quiet_hours.email.start"),
        ({"quiet_hours": {"fax": {"start": "21:00", "end": "08:00"}}}, "quiet_hours.fax.[key]"),
        ({"sending_days": []}, "sending_days"),
        ({"sending_days": ["someday"]}, "sending_days[0]"),
    ):
        response = await client.patch(f"/v1/orgs/{org.id}", json=body, headers=org.bearer)
        assert response.status_code == 422, (body, response.text)
        assert field in [e["field"] for e in response.json()["errors"]], response.text
    people = await audience(db, org, [{"email": "a@example.com"}])
    campaign_id = await email_campaign(db, org)
    base = {"name": "b", "campaign_id": campaign_id, "list_ids": [people.list_id]}
    for extra, field in (
        ({"local_time": "9:30"}, "local_time"),
        ({"local_date": "2026-03-29"}, "local_date"),  # a date without a time
    ):
        response = await client.post(
            f"/v1/orgs/{org.id}/broadcasts", json={**base, **extra}, headers=org.bearer
        )
        assert response.status_code == 422, (extra, response.text)
        assert [e["field"] for e in response.json()["errors"]] == [field]
    response = await client.patch(
        f"/v1/orgs/{org.id}",
        json={"sending_days": ["fri", "mon", "fri"], "timezone": "Europe/Paris"},
        headers=org.bearer,
    )
    assert response.json()["sending_days"] == ["mon", "fri"]
    audit = (await client.get(f"/v1/orgs/{org.id}/audit?limit=1", headers=org.bearer)).json()
    assert audit["data"][0]["action"] == "org.update"
    assert "timezone" in audit["data"][0]["changes"]
