"""The console's door in a real browser: sign in, a refused sign-in, a form without its
CSRF token, sign out, an operator's org switch."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Served, shoot, sign_in_through_the_form
from tidings.members.roles import Role


def test_sign_in_from_a_page_lands_back_on_it(page: Page, console_server: Served) -> None:
    member = console_server.member()
    page.goto("/")
    expect(page).to_have_url(f"{console_server.url}/login?next=%2F")
    shoot(page, "sign-in")
    page.fill("#email", member.email)
    page.fill("#password", member.password)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{console_server.url}/")
    expect(page.locator("h1")).to_have_text("Overview")
    expect(page.locator("header.top")).to_contain_text(member.email)
    shoot(page, "overview")
    cookie = next(c for c in page.context.cookies() if c["name"] == "tidings_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"


def test_a_wrong_password_is_refused(page: Page, console_server: Served) -> None:
    member = console_server.member()
    sign_in_through_the_form(page, member.email, "not the password")
    expect(page.locator("[role=alert]")).to_have_text("Wrong email or password.")
    expect(page.locator("#email")).to_have_value(member.email)
    shoot(page, "sign-in-refused")
    page.goto("/")
    expect(page).to_have_url(f"{console_server.url}/login?next=%2F")


def test_a_form_without_its_csrf_token_is_refused(page: Page, console_server: Served) -> None:
    member = console_server.member()
    sign_in_through_the_form(page, member.email)
    expect(page.locator("h1")).to_have_text("Overview")
    # What a forged form from another site amounts to: the same POST, without the token.
    page.eval_on_selector("form[action='/logout'] input[name=csrf_token]", "e => e.remove()")
    page.click("form[action='/logout'] button")
    expect(page.locator("h1")).to_have_text("Forbidden")
    expect(page.locator("section.error")).to_contain_text("did not come from the console")
    shoot(page, "csrf-refused")
    page.goto("/")
    expect(page.locator("h1")).to_have_text("Overview")  # still signed in


def test_sign_out(page: Page, console_server: Served) -> None:
    member = console_server.member(role=Role.VIEWER)
    sign_in_through_the_form(page, member.email)
    page.click("text=Sign out")
    expect(page).to_have_url(f"{console_server.url}/login")
    shoot(page, "signed-out")
    page.goto("/")
    expect(page).to_have_url(f"{console_server.url}/login?next=%2F")


def test_an_operator_switches_org(page: Page, console_server: Served) -> None:
    other = console_server.org("Elsewhere Ltd")
    operator = console_server.member(is_operator=True)
    sign_in_through_the_form(page, operator.email)
    page.select_option("#switch-org", str(other.id))
    page.click("form.switch-org button")
    expect(page.locator("p.flash")).to_contain_text("Now showing Elsewhere Ltd")
    expect(page.locator("header.top .org")).to_contain_text("Elsewhere Ltd")
    shoot(page, "org-switched")
