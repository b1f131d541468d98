"""Compose a broadcast at each recipient's local time in a real browser: the estimate
beside the form follows the audience and the time (htmx, the API's dry run), then the
broadcast is made with its local time. Screenshot: var/screenshots/compose-estimate.png."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from tests.browser.conftest import Served, shoot, sign_in_through_the_form
from tests.support.sending import audience, email_campaign
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.members.roles import Role


def test_compose_a_local_time_broadcast_and_see_its_estimate(
    page: Page, console_server: Served
) -> None:
    org = console_server.org("Local time")
    me = console_server.member(role=Role.EDITOR, org=org)

    async def work(db: Database) -> tuple[int, int]:
        made = await audience(db, org, [{"email": f"l{n}@example.com"} for n in range(3)] + [
            {"email": "tokyo@example.com", "timezone": "Asia/Tokyo"}])  # fmt: skip
        return await email_campaign(db, org, name="Morning"), made.list_id

    campaign_id, list_id = console_server.run(work)
    day = (utcnow() + timedelta(days=2)).date().isoformat()  # ahead in every zone
    sign_in_through_the_form(page, me.email)

    page.goto("/compose")
    page.select_option("#campaign_id", str(campaign_id))
    page.check(f"input[name=list_ids][value='{list_id}']")
    estimate = page.locator("#estimate")
    expect(estimate.locator("[data-recipients]")).to_have_attribute("data-recipients", "4")
    page.check("input[name=when][value=local]")
    page.fill("input[name=local_time]", "09:30")
    page.fill("input[name=local_date]", day)
    expect(estimate.locator(".last-due")).to_have_text(f"{day} 09:30 UTC")
    expect(estimate.locator("[data-covered]")).to_have_attribute("data-covered", "yes")
    page.fill("#name", "At 09:30 local")
    shoot(page, "compose-estimate")
    page.click("button:text('Create broadcast')")
    expect(page.locator("h1")).to_contain_text("At 09:30 local")
    expect(page.locator("main")).to_contain_text(f"each message at 09:30 on {day}")
