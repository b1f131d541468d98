"""Browser tests: Playwright for Python driving Debian's Chromium (`chromium`, installed
when missing; browser downloads are not reachable), against the real app served on a
loopback port by uvicorn, as `tidings serve` serves it.

They run on ONE database, chosen as the schemathesis run chooses: PostgreSQL when
TIDINGS_TEST_DATABASE_URL is set, else SQLite (`make pytest` runs them in its SQLite
half). One browser and one served app per session; each test gets a fresh browser
context (no cookies) and makes its own org and members (`console_server.member(...)`).

Screenshots of each page go to var/screenshots/ (`shoot(page, "name")`); the run's
summary prints where. Every test here is marked `browser`: `pytest -m "not browser"`
leaves them out.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import PG_ENV, _empty_all
from tests.support.console import PASSWORD, TestMember, add_member
from tests.support.debian import ensure_command
from tests.support.factories import OrgWithKey, make_org
from tests.support.outbound import LOOPBACK_ALLOW
from tidings.app import create_app
from tidings.db.engine import Database
from tidings.members.roles import Role
from tidings.settings import Settings

T = TypeVar("T")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
_numbers = itertools.count(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests, and run them last: while Playwright's sync API is open its
    event loop counts as running in the main thread, where no async test could run."""
    here = Path(__file__).parent
    ours = [item for item in items if here in Path(item.path).parents]
    for item in ours:
        item.add_marker(pytest.mark.browser)
    items[:] = [item for item in items if item not in ours] + ours


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SCREENSHOTS.exists() and any(SCREENSHOTS.iterdir()):
        terminalreporter.write_line(f"console screenshots: {SCREENSHOTS}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    """The app served for the session's browser tests, and a way to set its data up."""

    url: str
    settings: Settings

    def run(self, work: Callable[[Database], Awaitable[T]]) -> T:
        """Run `work` against the served app's database, in a thread of its own (the
        test's thread has Playwright's loop)."""

        async def main() -> T:
            db = Database(self.settings)
            try:
                return await work(db)
            finally:
                await db.dispose()

        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, main()).result()

    def org(self, name: str = "Acme") -> OrgWithKey:
        return self.run(lambda db: make_org(db, name))

    def member(
        self, *, role: Role = Role.OWNER, org: OrgWithKey | None = None, is_operator: bool = False
    ) -> TestMember:
        """A member (of a new org unless given), with the password `PASSWORD`."""
        org = org or self.org(f"Org {next(_numbers)}")
        return self.run(
            lambda db: add_member(db, org_id=org.id, role=role, is_operator=is_operator)
        )


@pytest.fixture(scope="session")
def console_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> str:
    if os.environ.get(PG_ENV):
        url: str = request.getfixturevalue("postgres_url")
        asyncio.run(_empty_all(url))
        return url
    path = tmp_path_factory.mktemp("console") / "tidings.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def console_server(console_database: str) -> Iterator[Served]:
    """The real app (its dispatcher too, so a broadcast sends) on a loopback port."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=console_database,
        auto_migrate=False,
        dispatcher=True,
        secret_key="test-secret-key-of-at-least-32-characters",
        outbound_allow=LOOPBACK_ALLOW,
        public_url=base,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="console-app", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive(), "the app failed to start"
        assert time.monotonic() < deadline, "the app did not start in 30 s"
        time.sleep(0.05)
    assert httpx.get(f"{base}/healthz").status_code == 200
    yield Served(url=base, settings=settings)
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless, one for the whole session."""
    chromium = ensure_command("chromium", package="chromium", paths=["/usr/bin/chromium"])
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(console_server: Served, browser: Browser) -> Iterator[Page]:
    """A new browser context (no cookies) on the served console (the server first: its
    database is set up with asyncio.run, which cannot run once Playwright's loop is)."""
    context = browser.new_context(
        base_url=console_server.url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    yield opened
    context.close()


def shoot(page: Page, name: str) -> Path:
    """Save a screenshot of the page as a test artifact under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in_through_the_form(page: Page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
