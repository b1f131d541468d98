"""static/console.js, the live fragments every live page uses (templates/_live.html):
it polls, slows down when answers are slow, and stops when an answer says it is final.

The page and its fragment are served by Playwright's request interception, so the
script is tested alone, as the console's pages will use it; the assets are the real
ones, from the served app."""

from __future__ import annotations

import time

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import Served

PAGE = """<!doctype html><html><head>
<script src="/static/htmx.min.js"></script><script src="/static/console.js"></script>
</head><body>
<div id="live" data-live="/live-test/fragment" data-live-every="0.5">waiting</div>
</body></html>"""


def test_a_live_fragment_backs_off_when_slow_and_stops_when_final(
    page: Page, console_server: Served
) -> None:
    answers: list[float] = []

    def serve_page(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", body=PAGE)

    def serve_fragment(route: Route) -> None:
        answers.append(time.monotonic())
        n = len(answers)
        if n == 1:
            time.sleep(1.2)  # a slow answer: the next wait doubles
            route.fulfill(status=200, content_type="text/html", body="<b>one</b>")
        elif n == 2:
            route.fulfill(status=200, content_type="text/html", body="<b>two</b>")
        else:
            body = "<b>sent</b><span data-live-final hidden></span>"
            route.fulfill(status=200, content_type="text/html", body=body)

    page.route("**/live-test", serve_page)
    page.route("**/live-test/fragment", serve_fragment)
    page.goto("/live-test")
    live = page.locator("#live")
    expect(live).to_have_attribute("data-live-wait", "1000", timeout=5_000)  # 500 ms doubled
    expect(live).to_have_text("one")
    expect(live).to_have_attribute("data-live-done", "true", timeout=5_000)
    expect(live).to_have_text("sent")
    expect(live).to_have_attribute("data-live-wait", "500")  # a quick answer: back to 0.5 s
    assert len(answers) == 3
    assert answers[1] - answers[0] >= 1.2 + 1.0 - 0.1  # the slow answer, then the longer wait
    page.wait_for_timeout(1_000)
    assert len(answers) == 3  # final: no more requests


def test_a_live_fragment_waits_while_the_tab_is_hidden(page: Page, console_server: Served) -> None:
    answers: list[int] = []

    def serve_fragment(route: Route) -> None:
        answers.append(len(answers) + 1)
        route.fulfill(status=200, content_type="text/html", body=f"<b>{len(answers)}</b>")

    page.route("**/live-test", lambda r: r.fulfill(status=200, content_type="text/html", body=PAGE))
    page.route("**/live-test/fragment", serve_fragment)
    page.goto("/live-test")
    expect(page.locator("#live")).to_have_text("1")
    hide = "h => { Object.defineProperty(document, 'hidden', {value: h, configurable: true});"
    page.evaluate(f"({hide} document.dispatchEvent(new Event('visibilitychange')); }})(true)")
    page.wait_for_timeout(1_500)  # three periods: at most the request already under way
    seen = len(answers)
    assert seen <= 2
    page.wait_for_timeout(1_000)
    assert len(answers) == seen  # nothing while hidden
    page.evaluate(f"({hide} document.dispatchEvent(new Event('visibilitychange')); }})(false)")
    expect(page.locator("#live")).to_have_text(str(seen + 1))
