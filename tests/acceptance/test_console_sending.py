"""The console's sending pages over HTTP: overview, broadcasts (list, report, live
fragments, pause/resume/cancel), compose (count, test send, create), messages (search,
timeline) and the sink; roles, CSRF and another org's objects."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import make_org
from tests.support.sending import Emailed, audience, email_campaign, emailed
from tidings.broadcasts.models import Broadcast
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.service import create_broadcast, create_for_audience
from tidings.content.render import Renderer
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.dispatcher.loop import Dispatcher
from tidings.members.roles import Role
from tidings.outbox.models import Message

FINAL = "data-live-final"


async def _status(db: Database, broadcast_id: int) -> str:
    async with db.session() as session:
        found = await session.scalar(select(Broadcast.status).where(Broadcast.id == broadcast_id))
    assert found is not None
    return found


async def _scheduled_later(db: Database, org_id: int, campaign_id: int, list_id: int) -> int:
    async with db.transaction() as session:
        made = await create_broadcast(
            session,
            org_id=org_id,
            body=BroadcastCreate(
                name="later",
                campaign_id=campaign_id,
                list_ids=[list_id],
                scheduled_at=utcnow() + timedelta(days=1),
            ),
        )
    return made.broadcast.id


async def test_a_sent_broadcast_reads_in_the_overview_list_and_report(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    sent: Emailed = await emailed(db, me.org, 3)
    b = sent.broadcast_id

    overview = await client.get("/")
    assert overview.status_code == 200
    row = re.search(r'<tr data-channel="email">.*?</tr>', overview.text, re.S)
    assert row is not None
    assert re.search(r"<td class=\"num\" data-sent>3</td>", row.group(0))

    listed = await client.get("/broadcasts")
    assert listed.status_code == 200
    assert f'data-broadcast="{b}" data-status="SENT"' in listed.text
    assert '<progress value="3" max="3">' in listed.text
    rows = await client.get("/broadcasts/rows")
    assert rows.status_code == 200
    assert "<html" not in rows.text
    assert FINAL in rows.text  # every broadcast shown is final: polling stops

    report = await client.get(f"/broadcasts/{b}")
    assert report.status_code == 200
    assert 'data-counter="sent">3<' in report.text
    assert '<polyline class="line line-sent"' in report.text  # the chart, server-side SVG
    assert "Hello {{ first_name }}" in report.text  # the frozen subject, as sent
    assert 'action="/broadcasts/' not in report.text  # a viewer is offered no move
    progress = await client.get(f"/broadcasts/{b}/progress")
    assert FINAL in progress.text
    assert "SENT" in progress.text


async def test_pause_resume_cancel_follow_the_status_table(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    people = await audience(db, me.org, [{"email": "a@example.com"}])
    b = await _scheduled_later(db, me.org.id, await email_campaign(db, me.org), people.list_id)

    page = await client.get(f"/broadcasts/{b}")
    assert f'action="/broadcasts/{b}/pause"' in page.text
    assert f'action="/broadcasts/{b}/resume"' not in page.text
    assert FINAL not in page.text  # scheduled: still live

    for move, status in (("pause", "PAUSED"), ("resume", "SCHEDULED"), ("cancel", "CANCELLED")):
        answer = await client.post(f"/broadcasts/{b}/{move}", data={"csrf_token": me.csrf})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == f"/broadcasts/{b}"
        assert await _status(db, b) == status
    shown = await client.get(f"/broadcasts/{b}")
    assert "Broadcast cancelled." in shown.text  # the flash the redirect left
    assert FINAL in shown.text
    assert 'action="/broadcasts/' not in shown.text
    again = await client.post(f"/broadcasts/{b}/pause", data={"csrf_token": me.csrf})
    assert again.status_code == 409
    assert "CANCELLED broadcast cannot become PAUSED" in again.text


async def test_a_viewer_cannot_move_and_nobody_moves_without_csrf_or_in_another_org(
    client: httpx.AsyncClient, db: Database
) -> None:
    other = await make_org(db, "Other")
    people = await audience(db, other, [{"email": "a@example.com"}])
    their_campaign = await email_campaign(db, other)
    theirs = await _scheduled_later(db, other.id, their_campaign, people.list_id)

    me = await signed_in(client, db, role=Role.ADMIN)
    for path in (f"/broadcasts/{theirs}", f"/broadcasts/{theirs}/progress"):
        assert (await client.get(path)).status_code == 404
    foreign = await client.post(f"/broadcasts/{theirs}/pause", data={"csrf_token": me.csrf})
    assert foreign.status_code == 404
    assert await _status(db, theirs) == "SCHEDULED"
    for path, form in (
        ("/compose", {"name": "x", "campaign_id": their_campaign, "send_to_all": "true"}),
        ("/compose/test", {"campaign_id": their_campaign, "test_addresses": "x@example.com"}),
    ):
        answer = await client.post(path, data={"csrf_token": me.csrf, **form})
        assert answer.status_code == 404, (path, answer.text)
    counted = await client.get(f"/compose/count?list_ids={people.list_id}")
    assert ">0 contacts<" in counted.text  # their list counts none of their contacts here

    mine_people = await audience(db, me.org, [{"email": "b@example.com"}])
    mine = await _scheduled_later(
        db, me.org.id, await email_campaign(db, me.org), mine_people.list_id
    )
    forged = await client.post(f"/broadcasts/{mine}/pause", data={"csrf_token": "x" * 43})
    assert forged.status_code == 403
    assert await _status(db, mine) == "SCHEDULED"

    client.cookies.clear()  # the same org's viewer, signed in instead
    viewer = await signed_in(client, db, role=Role.VIEWER, org=me.org)
    refused = await client.post(f"/broadcasts/{mine}/pause", data={"csrf_token": viewer.csrf})
    assert refused.status_code == 403
    assert await _status(db, mine) == "SCHEDULED"
    assert (await client.get("/compose")).status_code == 403


async def test_compose_counts_tests_and_creates_a_broadcast_that_sends(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    people = await audience(db, me.org, [{"email": f"c{n}@example.com"} for n in range(4)])
    campaign_id = await email_campaign(db, me.org, name="Launch")

    form = await client.get("/compose")
    assert form.status_code == 200
    assert f'<option value="{campaign_id}"' in form.text
    assert 'hx-get="/compose/count"' in form.text
    count = await client.get(f"/compose/count?list_ids={people.list_id}")
    assert ">4 contacts<" in count.text
    assert "<html" not in count.text
    everyone = await client.get("/compose/count?send_to_all=true")
    assert ">4 contacts<" in everyone.text
    assert "Choose lists" in (await client.get("/compose/count")).text

    test = await client.post(
        "/compose/test",
        data={"csrf_token": me.csrf, "campaign_id": campaign_id,
              "test_addresses": "qa@example.com\nlead@example.com"},
    )  # fmt: skip
    assert test.status_code == 303, test.text
    again = await client.get(test.headers["location"])
    assert "Test sent to 2 addresses" in again.text
    assert f'<option value="{campaign_id}" selected>' in again.text
    bad = await client.post(
        "/compose/test",
        data={"csrf_token": me.csrf, "campaign_id": campaign_id, "test_addresses": "not-mail"},
    )
    assert bad.status_code == 422
    assert "test_addresses" in bad.text

    nothing = await client.post(
        "/compose", data={"csrf_token": me.csrf, "name": "x", "campaign_id": campaign_id}
    )
    assert nothing.status_code == 422
    assert "choose an audience" in nothing.text
    undated = await client.post(
        "/compose",
        data={"csrf_token": me.csrf, "name": "x", "campaign_id": campaign_id,
              "list_ids": people.list_id, "when": "later"},
    )  # fmt: skip
    assert undated.status_code == 422
    assert "scheduled_at" in undated.text

    made = await client.post(
        "/compose",
        data={"csrf_token": me.csrf, "name": "Launch day", "campaign_id": campaign_id,
              "list_ids": people.list_id, "when": "now"},
    )  # fmt: skip
    assert made.status_code == 303, made.text
    b = int(made.headers["location"].rsplit("/", 1)[1])
    await Dispatcher(db, renderer=Renderer()).drain()
    assert await _status(db, b) == "SENT"
    async with db.session() as session:
        singles = list(
            await session.scalars(select(Message.recipient).where(Message.broadcast_id.is_(None)))
        )
    assert sorted(r or "" for r in singles) == ["lead@example.com", "qa@example.com"]
    report = await client.get(f"/broadcasts/{b}")
    assert 'data-counter="sent">4<' in report.text


async def test_messages_search_timeline_and_sink(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.VIEWER)
    sent = await emailed(db, me.org, 2)

    found = await client.get("/messages?address=P1@example.com")
    assert found.status_code == 200
    ids = re.findall(r'<tr data-message="(\d+)">', found.text)
    assert len(ids) == 1
    by_status = await client.get(f"/messages?status=sent&broadcast_id={sent.broadcast_id}")
    assert len(re.findall(r"<tr data-message=", by_status.text)) == 2
    today = utcnow().date().isoformat()
    assert len(re.findall(r"<tr data-message=", (await client.get(
        f"/messages?since={today}&until={today}")).text)) == 2  # fmt: skip
    tomorrow = (utcnow() + timedelta(days=1)).date().isoformat()
    assert "No messages match" in (await client.get(f"/messages?since={tomorrow}")).text
    nul = await client.get("/messages?address=a%00b")
    assert nul.status_code == 422
    assert "address" in nul.text
    wrong = await client.get("/messages?since=yesterday&status=lost")
    assert wrong.status_code == 422
    assert "since" in wrong.text
    assert "status" in wrong.text

    shown = await client.get(f"/messages/{ids[0]}")
    assert shown.status_code == 200
    steps = re.findall(r'data-step="(\w+)"', shown.text)
    assert steps[0] == "queued"
    assert "sent" in steps
    sink_id = re.search(r'href="/sink/(\d+)"', shown.text)
    assert sink_id is not None
    kept = await client.get(f"/sink/{sink_id.group(1)}")
    assert kept.status_code == 200
    assert "p1@example.com" in kept.text
    assert "text/plain" in kept.text
    assert "Dear" in kept.text

    listed = await client.get("/sink")
    assert len(re.findall(r"<tr data-sink=", listed.text)) == 2

    other = await make_org(db, "Other")
    theirs = await emailed(db, other, 1)
    async with db.session() as session:
        their_message = await session.scalar(
            select(Message.id).where(Message.broadcast_id == theirs.broadcast_id)
        )
    assert (await client.get(f"/messages/{their_message}")).status_code == 404
    both_have_it = await client.get("/messages?address=p0@example.com")
    assert re.findall(r'<tr data-message="(\d+)">', both_have_it.text) != [str(their_message)]
    assert len(re.findall(r"<tr data-message=", both_have_it.text)) == 1  # ours only


async def test_a_draft_without_a_template_reads_and_can_only_be_cancelled(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    async with db.transaction() as session:
        draft = await create_for_audience(
            session, org_id=me.org.id, name="Someday", segment_ids=[], send_to_all=True,
            scheduled_at=None, campaign_id=None,
        )  # fmt: skip
    page = await client.get(f"/broadcasts/{draft.id}")
    assert page.status_code == 200
    assert "A draft without a template yet." in page.text
    assert f'action="/broadcasts/{draft.id}/cancel"' in page.text
    assert f'action="/broadcasts/{draft.id}/pause"' not in page.text
    listed = await client.get("/broadcasts")
    assert f'data-broadcast="{draft.id}" data-status="DRAFT"' in listed.text
    assert FINAL in listed.text  # a draft moves only when someone acts: the list stops
    live = await client.get(f"/broadcasts/{draft.id}/progress")
    assert FINAL not in live.text  # its own page keeps following it


async def test_a_message_being_retried_shows_its_attempts_and_last_reason(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    campaign_id = await email_campaign(db, me.org)
    tested = await client.post(
        "/compose/test",
        data={"csrf_token": me.csrf, "campaign_id": campaign_id, "test_addresses": "r@x.org"},
    )
    assert tested.status_code == 303, tested.text
    async with db.transaction() as session:  # as a worker leaves it after two failed tries
        message = await session.scalar(select(Message).where(Message.recipient == "r@x.org"))
        assert message is not None
        assert message.status == "queued"
        message.attempts, message.reason = 2, "421 try again later"
        message_id = message.id
    page = await client.get(f"/messages/{message_id}")
    assert re.findall(r'data-step="(\w+)"', page.text) == ["queued", "retrying"]
    assert "2 attempts; last: 421 try again later" in page.text
    assert "this message's is not kept" in page.text
