"""The console's credits, webhooks and org settings: roles, the API's messages beside
the fields, writes audited as the member, secrets shown once, another org's rows 404."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from tests.support.console import signed_in
from tests.support.factories import make_org
from tidings.audit.models import AuditEntry
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.orgs.models import Org
from tidings.webhooks.models import WebhookDelivery, WebhookEndpoint


async def _actions(db: Database, actor: str) -> list[str]:
    async with db.transaction(write=False) as session:
        query = select(AuditEntry.action).where(AuditEntry.actor == actor).order_by(AuditEntry.id)
        return list(await session.scalars(query))


async def test_credits_top_up_and_the_ledger(client: httpx.AsyncClient, db: Database) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    page = await client.get("/credits")
    assert page.status_code == 200
    assert 'data-balance="0.0"' in page.text
    added = await client.post(
        "/credits/top-ups", data={"amount": "12.5", "note": "first", "csrf_token": me.csrf}
    )
    assert added.status_code == 303
    page = await client.get("/credits")
    assert 'data-balance="12.5"' in page.text
    assert "<td>top-up</td>" in page.text
    negative = await client.post("/credits/top-ups", data={"amount": "-3", "csrf_token": me.csrf})
    assert negative.status_code == 422
    assert "Input should be greater than 0" in negative.text
    assert await _actions(db, f"member {me.member.id}") == ["credits.top_up"]
    client.cookies.clear()
    editor = await signed_in(client, db, role=Role.EDITOR, org=me.org)
    assert 'data-balance="12.5"' in (await client.get("/credits")).text
    refused = await client.post("/credits/top-ups", data={"amount": "1", "csrf_token": editor.csrf})
    assert refused.status_code == 403
    client.cookies.clear()
    await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert 'data-balance="0.0"' in (await client.get("/credits")).text


async def test_a_webhook_is_created_once_tested_and_shows_its_deliveries(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    created = await client.post(
        "/webhooks",
        data={"url": "https://8.8.8.8/hook", "event_type": ["delivered", "bounced"],
              "csrf_token": me.csrf},
    )  # fmt: skip
    assert created.status_code == 201
    secret = re.search(r"data-secret>([^<]+)<", created.text)
    assert secret is not None
    assert secret.group(1).startswith("whsec_")
    listed = await client.get("/webhooks")
    assert "https://8.8.8.8/hook" in listed.text
    assert secret.group(1) not in listed.text
    async with db.transaction(write=False) as session:
        endpoint = await session.scalar(select(WebhookEndpoint))
    assert endpoint is not None
    assert endpoint.event_types == ["delivered", "bounced"]
    tested = await client.post(f"/webhooks/{endpoint.id}/test", data={"csrf_token": me.csrf})
    assert tested.status_code == 303
    page = await client.get(f"/webhooks/{endpoint.id}")
    assert "<td>test" in page.text
    assert '<td class="status">pending</td>' in page.text
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(WebhookDelivery.event_type)) == "test"
    assert await _actions(db, f"member {me.member.id}") == ["webhook.create", "webhook.test"]
    audit_text = str(await _entries_changes(db))
    assert secret.group(1) not in audit_text
    paused = await client.post(
        f"/webhooks/{endpoint.id}/enabled", data={"enabled": "false", "csrf_token": me.csrf}
    )
    assert paused.status_code == 303
    assert "— disabled</p>" in (await client.get(f"/webhooks/{endpoint.id}")).text
    deleted = await client.post(f"/webhooks/{endpoint.id}/delete", data={"csrf_token": me.csrf})
    assert deleted.status_code == 303
    assert (await client.get(f"/webhooks/{endpoint.id}")).status_code == 404
    assert (await _actions(db, f"member {me.member.id}"))[-2:] == [
        "webhook.update",
        "webhook.delete",
    ]


async def _entries_changes(db: Database) -> list[object]:
    async with db.transaction(write=False) as session:
        return list(await session.scalars(select(AuditEntry.changes)))


async def test_a_webhook_url_is_checked_as_the_api_checks_it(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    private = await client.post(
        "/webhooks",
        data={"url": "http://10.0.0.1/hook", "event_type": ["delivered"], "csrf_token": me.csrf},
    )
    assert private.status_code == 422
    assert "refused" in private.text
    assert 'value="http://10.0.0.1/hook"' in private.text
    no_types = await client.post(
        "/webhooks", data={"url": "https://8.8.8.8/", "csrf_token": me.csrf}
    )
    assert no_types.status_code == 422
    assert "List should have at least 1 item" in no_types.text
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(WebhookEndpoint.id)) is None


async def test_another_org_s_webhook_is_404_and_a_viewer_cannot_test(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.OWNER)
    await client.post("/webhooks", data={"url": "https://8.8.8.8/", "event_type": ["*"],
                                         "csrf_token": me.csrf})  # fmt: skip
    async with db.transaction(write=False) as session:
        endpoint_id = await session.scalar(select(WebhookEndpoint.id))
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=me.org)
    assert (await client.get(f"/webhooks/{endpoint_id}")).status_code == 200
    denied = await client.post(f"/webhooks/{endpoint_id}/test", data={"csrf_token": viewer.csrf})
    assert denied.status_code == 403
    client.cookies.clear()
    other = await signed_in(client, db, role=Role.OWNER, org=await make_org(db, "Other"))
    assert (await client.get(f"/webhooks/{endpoint_id}")).status_code == 404
    for action in ("test", "enabled", "delete"):
        gone = await client.post(
            f"/webhooks/{endpoint_id}/{action}", data={"enabled": "false", "csrf_token": other.csrf}
        )
        assert gone.status_code == 404, action
    async with db.transaction(write=False) as session:
        assert await session.scalar(select(WebhookDelivery.id)) is None


async def test_org_settings_change_and_refuse_bad_input(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    saved = await client.post(
        "/settings",
        data={"name": "Acme Two", "phone_region": "fr", "sms_countries": "FR, be",
              "csrf_token": me.csrf},
    )  # fmt: skip
    assert saved.status_code == 303
    async with db.transaction(write=False) as session:
        org = await session.get(Org, me.org.id)
    assert org is not None
    assert org.name == "Acme Two"
    assert org.phone_region == "FR"
    page = await client.get("/settings")
    assert 'value="Acme Two"' in page.text
    bad = await client.post(
        "/settings", data={"name": "", "phone_region": "France", "csrf_token": me.csrf}
    )
    assert bad.status_code == 422
    assert "String should have at least 1 character" in bad.text
    assert "String should match pattern" in bad.text
    assert await _actions(db, f"member {me.member.id}") == ["org.update"]
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=me.org)
    assert "disabled" in (await client.get("/settings")).text
    denied = await client.post("/settings", data={"name": "X", "csrf_token": viewer.csrf})
    assert denied.status_code == 403


async def test_settings_set_the_time_zone_quiet_hours_and_sending_days(
    client: httpx.AsyncClient, db: Database
) -> None:
    me = await signed_in(client, db, role=Role.ADMIN)
    form = {"name": "Acme", "timezone": "Europe/Paris", "email_quiet_start": "21:00",
            "email_quiet_end": "08:00", "sms_quiet_start": "", "sms_quiet_end": "",
            "sending_days": ["mon", "tue", "wed"], "csrf_token": me.csrf}  # fmt: skip
    saved = await client.post("/settings", data=form)
    assert saved.status_code == 303
    api = (await client.get(f"/v1/orgs/{me.org.id}", headers=me.org.bearer)).json()
    assert api["timezone"] == "Europe/Paris"
    assert api["quiet_hours"] == {"email": {"start": "21:00", "end": "08:00"}}
    assert api["sending_days"] == ["mon", "tue", "wed"]
    page = (await client.get("/settings")).text
    assert 'value="Europe/Paris"' in page
    assert 'value="21:00"' in page
    assert 'value="08:00"' in page
    assert 'value="wed" checked' in page
    assert 'value="thu">' in page
    bad = await client.post("/settings", data={**form, "timezone": "Mars/Olympus",
                                               "sms_quiet_start": "25:00",
                                               "sms_quiet_end": "07:00"})  # fmt: skip
    assert bad.status_code == 422
    assert "quiet_hours.sms.start" in bad.text
    assert 'value="25:00"' in bad.text  # what was typed stays
    wrong_zone = await client.post("/settings", data={**form, "timezone": "Mars/Olympus"})
    assert wrong_zone.status_code == 422
    assert "unknown IANA time zone &#39;Mars/Olympus&#39;" in wrong_zone.text
    every_day = await client.post(
        "/settings",
        data={**form, "sending_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    )
    assert every_day.status_code == 303
    api = (await client.get(f"/v1/orgs/{me.org.id}", headers=me.org.bearer)).json()
    assert api["sending_days"] is None
    assert api["timezone"] == "Europe/Paris"
    async with db.transaction(write=False) as session:
        entries = (await session.scalars(
            select(AuditEntry).where(AuditEntry.org_id == me.org.id).order_by(AuditEntry.id)
        )).all()  # fmt: skip
    assert [e.action for e in entries] == ["org.update", "org.update"]
    assert entries[0].changes is not None
    assert "quiet_hours" in entries[0].changes
    client.cookies.clear()
    viewer = await signed_in(client, db, role=Role.VIEWER, org=me.org)
    assert (
        'id="timezone" name="timezone" value="Europe/Paris" placeholder="Europe/Paris" disabled'
        in (await client.get("/settings")).text
    )
    denied = await client.post("/settings", data={**form, "csrf_token": viewer.csrf})
    assert denied.status_code == 403
