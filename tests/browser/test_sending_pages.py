"""The sending pages in a real browser: compose a broadcast to the sink and watch it
reach SENT without reloading (the served app's dispatcher sends it), read a message's
timeline and what the sink kept, and pause, resume and cancel by the buttons. A
screenshot of each page is kept (var/screenshots/)."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import Page, expect

from tests.browser.conftest import Served, shoot, sign_in_through_the_form
from tests.support.factories import OrgWithKey
from tests.support.sending import audience, email_campaign
from tidings.broadcasts.schemas import BroadcastCreate
from tidings.broadcasts.service import create_broadcast
from tidings.db.base import utcnow
from tidings.db.engine import Database
from tidings.members.roles import Role


def _campaign_and_list(served: Served, org: OrgWithKey, people: int) -> tuple[int, int]:
    async def work(db: Database) -> tuple[int, int]:
        made = await audience(db, org, [{"email": f"b{n}@example.com"} for n in range(people)])
        return await email_campaign(db, org, name="Browser launch"), made.list_id

    return served.run(work)


def test_compose_send_watch_it_finish_and_read_a_message(
    page: Page, console_server: Served
) -> None:
    org = console_server.org("Sending")
    me = console_server.member(role=Role.EDITOR, org=org)
    campaign_id, list_id = _campaign_and_list(console_server, org, 5)
    sign_in_through_the_form(page, me.email)

    page.goto("/compose")
    page.select_option("#campaign_id", str(campaign_id))
    page.check(f"input[name=list_ids][value='{list_id}']")
    expect(page.locator("#audience-count")).to_contain_text("5 contacts")  # htmx, live
    page.fill("#name", "Browser broadcast")
    shoot(page, "compose")
    page.click("button:text('Create broadcast')")

    expect(page.locator("h1")).to_contain_text("Browser broadcast")
    page.evaluate("window.stillThisPage = true")  # gone if the page were reloaded
    live = page.locator("[data-live]")
    expect(live.locator(".progress")).to_have_attribute("data-status", "SENT", timeout=20_000)
    expect(live).to_have_attribute("data-live-done", "true")  # polling stopped
    assert page.evaluate("window.stillThisPage") is True
    expect(page.locator('[data-counter="sent"]')).to_have_text("5")
    page.reload()  # the chart is drawn with the page, not polled
    expect(page.locator("svg.chart polyline.line-sent")).to_have_count(1)
    shoot(page, "broadcast-report")

    page.goto("/broadcasts")
    expect(page.locator("tr[data-status=SENT]")).to_have_count(1)
    shoot(page, "broadcasts")
    page.goto("/")
    expect(page.locator('tr[data-channel="email"] [data-sent]')).to_have_text("5")
    shoot(page, "overview")

    page.goto("/messages")
    page.fill("#address", "b3@example.com")
    page.click("button:text('Search')")
    expect(page.locator("tr[data-message]")).to_have_count(1)
    shoot(page, "messages")
    page.click("tr[data-message] a >> nth=0")
    expect(page.locator("li[data-step=queued]")).to_have_count(1)
    expect(page.locator("li[data-step=sent]")).to_have_count(1)
    shoot(page, "message-timeline")
    page.click("a[href^='/sink/']")
    expect(page.locator("main")).to_contain_text("b3@example.com")
    expect(page.locator("main")).to_contain_text("text/plain")
    shoot(page, "sink-message")
    page.goto("/sink")
    expect(page.locator("tr[data-sink]")).to_have_count(5)
    shoot(page, "sink")


def test_pause_resume_and_cancel_by_the_buttons(page: Page, console_server: Served) -> None:
    org = console_server.org("Moves")
    me = console_server.member(role=Role.EDITOR, org=org)
    campaign_id, list_id = _campaign_and_list(console_server, org, 1)

    async def later(db: Database) -> int:
        async with db.transaction() as session:
            made = await create_broadcast(
                session,
                org_id=org.id,
                body=BroadcastCreate(
                    name="Tomorrow",
                    campaign_id=campaign_id,
                    list_ids=[list_id],
                    scheduled_at=utcnow() + timedelta(days=1),
                ),
            )
        return made.broadcast.id

    b = console_server.run(later)
    sign_in_through_the_form(page, me.email)
    page.goto(f"/broadcasts/{b}")
    status = page.locator(".progress")
    for button, after in (("Pause", "PAUSED"), ("Resume", "SCHEDULED"), ("Cancel", "CANCELLED")):
        page.click(f".moves button:text('{button}')")
        expect(status).to_have_attribute("data-status", after)
        expect(page.locator(".flash")).to_be_visible()
    expect(page.locator(".moves")).to_have_count(0)  # a cancelled broadcast has no move
    shoot(page, "broadcast-cancelled")
