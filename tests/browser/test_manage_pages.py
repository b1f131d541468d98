"""The console's management pages in a real browser: import a CSV and watch its progress
end, build a segment and see its count follow the rows, and a screenshot of each page."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Served, shoot, sign_in_through_the_form
from tidings.contacts import service as contacts
from tidings.db.engine import Database
from tidings.members.roles import Role


def test_import_a_csv_and_watch_it_finish(
    page: Page, console_server: Served, tmp_path: Path
) -> None:
    member = console_server.member(role=Role.ADMIN)
    sign_in_through_the_form(page, member.email)
    rows = [f"person{n}@example.com,P{n},{'pro' if n % 2 else 'free'},{n}" for n in range(2500)]
    csv = tmp_path / "people.csv"
    csv.write_text("email,first_name,plan,seats\n" + "\n".join(rows) + "\nnot-an-address,X,pro,1\n")
    page.goto("/contacts")
    shoot(page, "contacts-empty")
    page.click("text=Import a CSV file")
    shoot(page, "contacts-import")
    page.set_input_files("#file", str(csv))
    page.click("form.card button[type=submit]")
    expect(page).to_have_url(re.compile(r".*/contacts/imports/\d+$"))
    live = page.locator(".live")
    expect(live).to_have_attribute("data-live-done", "true", timeout=30_000)
    expect(page.locator(".import")).to_have_attribute("data-import-status", "done")
    expect(live).to_contain_text("2501 of 2501 rows read")
    expect(live).to_contain_text("2500 created, 0 updated, 1 failed")
    shoot(page, "contacts-import-progress")

    page.goto("/contacts?q=person7%40example.com")
    page.click("text=person7@example.com >> xpath=../td[1]/a")
    expect(page.locator("h1")).to_contain_text("Contact ")
    expect(page.locator("dd").first).to_contain_text("person7@example.com")
    shoot(page, "contact")


def test_build_a_segment_and_see_its_count(page: Page, console_server: Served) -> None:
    member = console_server.member(role=Role.OWNER)
    org_id = member.org_id

    async def people(db: Database) -> None:
        async with db.transaction() as session:
            await contacts.upsert_contacts(
                session, org_id=org_id, list_ids=[],
                rows=[{"email": f"s{n}@example.com", "attributes": {"plan": "pro", "seats": n}}
                      for n in range(20)],
            )  # fmt: skip

    console_server.run(people)
    sign_in_through_the_form(page, member.email)
    page.goto("/segments/new")
    count = page.locator("#segment-count")
    expect(count).to_contain_text("add a condition")
    page.fill("input[name=field_0]", "attributes.plan")
    page.fill("input[name=value_0]", "pro")
    expect(count.locator("[data-count]")).to_have_text("20")
    page.fill("input[name=field_1]", "attributes.seats")
    page.select_option("select[name=op_1]", "gte")
    page.fill("input[name=value_1]", "15")
    expect(count.locator("[data-count]")).to_have_text("5")
    shoot(page, "segment-builder")
    page.fill("#name", "Big accounts")
    page.click("text=Save the segment")
    expect(page.locator("h1")).to_have_text("Segment: Big accounts")
    expect(page.locator("section.card")).to_contain_text("5 contacts match now.")
    shoot(page, "segment")
    page.goto("/segments")
    expect(page.locator("table.segments")).to_contain_text("Big accounts")
    shoot(page, "segments")


def test_edit_a_template_with_its_preview(page: Page, console_server: Served) -> None:
    member = console_server.member(role=Role.ADMIN)
    org_id = member.org_id

    async def ada(db: Database) -> None:
        async with db.transaction() as session:
            await contacts.upsert_contacts(
                session, org_id=org_id, list_ids=[],
                rows=[{"email": "ada@example.com", "first_name": "Ada"}],
            )  # fmt: skip

    console_server.run(ada)
    sign_in_through_the_form(page, member.email)
    page.goto("/templates")
    shoot(page, "templates-empty")
    page.click("text=New template")
    page.fill("#name", "Welcome")
    page.fill("#subject", "Hello {{ first_name }}")
    page.fill("#html", "<p>Hi <b>{{ first_name }}</b></p>")
    shoot(page, "template-new")
    page.click("form.editor button[type=submit]")
    expect(page.locator("h1")).to_have_text("Template: Welcome")
    preview = page.locator("#preview")
    expect(preview.locator("[data-part=subject]")).to_have_text("Hello ")
    page.fill("#preview_for", "ada@example.com")
    expect(preview.locator("[data-part=subject]")).to_have_text("Hello Ada")
    frame = page.frame_locator("iframe.html-preview")
    expect(frame.locator("b")).to_have_text("Ada")
    page.fill("#subject", "Welcome aboard, {{ first_name }}")
    expect(preview.locator("[data-part=subject]")).to_have_text("Welcome aboard, Ada")
    page.fill("#html", "<p>{{ nope }}</p>")
    expect(preview.locator(".field-error")).to_contain_text("nope")
    page.fill("#html", "<p>Welcome, <b>{{ first_name }}</b></p>")
    expect(frame.locator("b")).to_have_text("Ada")
    shoot(page, "template-editor")
    page.click("form.editor button[type=submit]")
    expect(page.locator(".flash")).to_have_text("Saved as version 2")
    page.click("text=history")
    expect(page.locator("#v2 h2")).to_have_text("Version 2 (current)")
    shoot(page, "template-versions")
    page.click("text=Restore version 1")
    expect(page.locator(".flash")).to_have_text("Version 1 restored as version 3")
    expect(page.locator("#subject")).to_have_value("Hello {{ first_name }}")


MANAGE_PAGES = {
    "lists": ("/lists", "Lists"),
    "campaigns": ("/campaigns", "Campaigns"),
    "campaign-new": ("/campaigns/new", "New campaign"),
    "connections": ("/connections", "Connections"),
    "suppressions": ("/suppressions", "Suppressions"),
    "webhooks": ("/webhooks", "Webhooks"),
    "keys": ("/keys", "API keys"),
    "credits": ("/credits", "Credits"),
    "audit": ("/audit", "Audit log"),
    "settings": ("/settings", "Settings"),
}


def test_every_management_page_opens_and_is_kept_as_a_screenshot(
    page: Page, console_server: Served
) -> None:
    member = console_server.member(role=Role.OWNER)
    sign_in_through_the_form(page, member.email)
    page.goto("/lists")
    page.fill("#name", "Newsletter")
    page.click("form.new-list button[type=submit]")
    expect(page.locator("h1")).to_have_text("List: Newsletter")
    shoot(page, "list")
    page.goto("/suppressions")
    page.fill("#address", "gone@example.com")
    page.click("form.add-suppression button[type=submit]")
    expect(page.locator("table.suppressions")).to_contain_text("gone@example.com")
    page.goto("/keys")
    page.fill("#name", "CRM")
    page.click("form.new-key button[type=submit]")
    expect(page.locator("[data-secret]")).to_be_visible()
    shoot(page, "key-issued")
    for name, (path, title) in MANAGE_PAGES.items():
        page.goto(path)
        expect(page.locator("h1")).to_have_text(title)
        shoot(page, name)
