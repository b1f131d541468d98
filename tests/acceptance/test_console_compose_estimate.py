"""Compose at each recipient's local time, with the estimate live beside the form (the
API's dry run), and a send the balance cannot cover refused with its figures."""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import func, select

from tests.support.console import signed_in
from tests.support.factories import make_org
from tests.support.sending import audience, email_campaign
from tidings.broadcasts.models import Broadcast
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.members.roles import Role

HX = "true"


async def _broadcasts(db: Database) -> int:
    async with db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Broadcast)) or 0)


async def test_the_estimate_follows_the_form_and_a_local_time_send_is_made(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    people = await audience(db, me.org, [{"email": f"e{i}@example.com"} for i in range(4)] + [
        {"email": "tokyo@example.com", "timezone": "Asia/Tokyo"}])  # fmt: skip
    campaign_id = await email_campaign(db, me.org)
    tomorrow = (utcnow() + timedelta(days=2)).date().isoformat()  # ahead in every zone
    form = {"campaign_id": str(campaign_id), "list_ids": [str(people.list_id)], "when": "local",
            "local_time": "09:30", "local_date": tomorrow, "csrf_token": me.csrf}  # fmt: skip
    page = await client.get("/compose")
    assert 'hx-post="/compose/estimate"' in page.text
    assert 'value="local"' in page.text
    headers = {"HX-Request": HX}
    none_yet = await client.post("/compose/estimate", data={"csrf_token": me.csrf}, headers=headers)
    assert none_yet.status_code == 200
    assert "Choose a campaign or a template, and an audience" in none_yet.text
    shown = await client.post("/compose/estimate", data=form, headers=headers)
    assert shown.status_code == 200, shown.text
    assert "<html" not in shown.text
    api = await client.post(
        f"/v1/orgs/{me.org.id}/broadcasts",
        json={"name": "b", "campaign_id": campaign_id, "list_ids": [people.list_id],
              "local_time": "09:30", "local_date": tomorrow, "dry_run": True},
        headers=me.org.bearer,
    )  # fmt: skip
    figures = api.json()
    assert figures["recipients"] == {"email": 5}
    assert 'data-recipients="5"' in shown.text
    assert f"{tomorrow} 09:30 UTC" in shown.text  # the last due: UTC's 09:30
    assert figures["last_due_at"].startswith(f"{tomorrow}T09:30")
    assert 'data-covered="yes"' in shown.text
    no_time = await client.post("/compose/estimate", data={**form, "local_time": ""},
                                headers=headers)  # fmt: skip
    assert "local_time" in no_time.text
    bad_time = await client.post("/compose/estimate", data={**form, "local_time": "9h30"},
                                 headers=headers)  # fmt: skip
    assert "local_time" in bad_time.text
    assert "String should match pattern" in bad_time.text
    assert await _broadcasts(db) == 0  # an estimate makes nothing
    made = await client.post("/compose", data={**form, "name": "Morning"})
    assert made.status_code == 303, made.text
    assert await _broadcasts(db) == 1
    api_b = (await client.get(f"/v1/orgs/{me.org.id}/broadcasts", headers=me.org.bearer)).json()
    assert (api_b["data"][0]["local_time"], api_b["data"][0]["local_date"]) == ("09:30", tomorrow)
    report = await client.get(made.headers["location"])
    assert "each message at 09:30 on" in report.text


async def test_a_send_the_balance_cannot_cover_is_refused_with_the_figures(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.EDITOR)
    people = await audience(db, me.org, [{"email": f"e{i}@example.com"} for i in range(5)])
    campaign_id = await email_campaign(db, me.org)
    priced = await client.put(
        f"/v1/orgs/{me.org.id}/prices",
        json={"prices": [{"channel": "email", "country": "*", "amount": 1}]},
        headers=me.org.bearer,
    )
    assert priced.status_code == 200, priced.text
    form = {"name": "Too dear", "campaign_id": str(campaign_id),
            "list_ids": [str(people.list_id)], "when": "now", "csrf_token": me.csrf}  # fmt: skip
    shown = await client.post("/compose/estimate", data=form, headers={"HX-Request": HX})
    assert 'data-covered="no"' in shown.text
    assert "5 credits" in shown.text
    refused = await client.post("/compose", data=form)
    assert refused.status_code == 402
    assert "Refused: this send costs 5 credits" in refused.text
    assert 'data-recipients="5"' in refused.text
    assert 'data-covered="no"' in refused.text
    assert 'value="Too dear"' in refused.text  # the form comes back as it was
    assert await _broadcasts(db) == 0


async def test_a_viewer_cannot_estimate_and_another_org_s_campaign_is_404(
    client: httpx.AsyncClient, db: Database
) -> None:
    owner = await signed_in(client, db, role=Role.OWNER)
    people = await audience(db, owner.org, [{"email": "a@example.com"}])
    campaign_id = await email_campaign(db, owner.org)
    form = {"campaign_id": str(campaign_id), "list_ids": [str(people.list_id)]}
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=owner.org)
    denied = await client.post("/compose/estimate", data={**form, "csrf_token": viewer.csrf})
    assert denied.status_code == 403
    client.cookies.clear()
    other = await signed_in(client, db, role=Role.EDITOR, org=await make_org(db, "Other"))
    theirs = await client.post("/compose/estimate", data={**form, "csrf_token": other.csrf})
    assert theirs.status_code == 404
    no_csrf = await client.post("/compose/estimate", data=form)
    assert no_csrf.status_code == 403
