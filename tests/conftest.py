"""Fixtures shared by every test layer.

`database_url` is parametrised: every test that asks for a database runs on SQLite and,
when TIDINGS_TEST_DATABASE_URL names a PostgreSQL database, on PostgreSQL too (otherwise
that case is skipped, with the reason shown in pytest's summary).
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from tests.support import pgdb
from tests.support.outbound import LOOPBACK_ALLOW
from tidings.app import create_app
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.schema import Base
from tidings.settings import Settings
from tidings.testing import Gateway

PG_ENV = "TIDINGS_TEST_DATABASE_URL"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Once the tests are collected, move everything alive (the modules of Tidings,
    FastAPI, SQLAlchemy, hypothesis, …: hundreds of thousands of objects) to the permanent
    generation, as `tidings serve` does (`runtime.tune_gc`): otherwise every full
    collection during the run walks them all again, for nothing. Measured: a fifth of the
    CPU time of a sample of SQLite acceptance tests, a tenth on PostgreSQL. What the tests
    create is collected as before."""
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "tidings.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The database of TIDINGS_TEST_DATABASE_URL, migrated; under pytest-xdist, each worker
    gets a database of its own beside it (same server), dropped when the worker ends."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run when a server answers)")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None:
        migrate.upgrade(url)
        yield url
        return
    url = asyncio.run(pgdb.worker_url(url, worker))
    try:
        migrate.upgrade(url)
        yield url
    finally:
        asyncio.run(pgdb.drop_worker(url))


async def _empty_all(url: str) -> None:
    """Delete every row, children first, and restart the id sequences at 1.

    This leaves what `TRUNCATE … RESTART IDENTITY` leaves, about ten times faster on the
    few rows a test writes: TRUNCATE gives each of the ~120 tables and indexes a new file.
    """
    tables = reversed(Base.metadata.sorted_tables)
    deletes = [f"DELETE FROM {table.name}" for table in tables]  # noqa: S608 (our own names)
    restart = (
        "SELECT setval(s.oid, 1, false) FROM pg_class s"
        " JOIN pg_namespace n ON n.oid = s.relnamespace"
        " WHERE s.relkind = 'S' AND n.nspname = current_schema()"
    )
    sql = "; ".join(["SET synchronous_commit = off", "BEGIN", *deletes, restart, "COMMIT"])
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "tidings.db"
        shutil.copyfile(template, path)
        return f"sqlite+aiosqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auto_migrate=False,
        dispatcher=False,
        secret_key="test-secret-key-of-at-least-32-characters",
        outbound_allow=LOOPBACK_ALLOW,  # the tests' servers listen on loopback
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    if settings.database_url.startswith("postgresql"):
        await _empty_all(settings.database_url)
    database = Database(settings)
    yield database
    await database.dispose()


class _Apps:
    """One app per distinct settings (ignoring the database URL), built once per session.

    FastAPI builds every route's dependencies the first time an app serves a request, which
    costs far more than most tests: so the tests share apps. Each test still starts the app
    (its lifespan) on its own settings, hence its own database, and stops it afterwards;
    `create_app` itself is exercised by tests/acceptance/test_service.py and test_cli.py.
    """

    def __init__(self) -> None:
        self._built: list[tuple[Settings, FastAPI]] = []

    def for_settings(self, settings: Settings) -> FastAPI:
        key = settings.model_copy(update={"database_url": ""})
        app = next((app for built_for, app in self._built if built_for == key), None)
        if app is None:
            app = create_app(settings)
            self._built.append((key, app))
        app.state.settings = settings  # what the lifespan and the routes read
        app.dependency_overrides.clear()
        return app


@pytest.fixture(scope="session")
def apps() -> _Apps:
    return _Apps()


@pytest.fixture
async def client(settings: Settings, db: Database, apps: _Apps) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the ASGI app (its lifespan run), on the test's database."""
    app = apps.for_settings(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as http:
            yield http


@pytest.fixture
def cli_env(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI (which reads TIDINGS_* itself) at the test's database, with the
    test's secret key (the secrets it sealed open under the keys derived from it)."""
    monkeypatch.setenv("TIDINGS_DATABASE_URL", settings.database_url)
    assert settings.secret_key is not None
    monkeypatch.setenv("TIDINGS_SECRET_KEY", settings.secret_key.get_secret_value())
    monkeypatch.setenv("TIDINGS_AUTO_MIGRATE", "false")
    monkeypatch.setenv("TIDINGS_OUTBOUND_ALLOW", settings.outbound_allow)


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A fresh HTTP gateway on loopback (`tidings.testing.Gateway`) for the test's requests."""
    server = Gateway()
    await server.start()
    yield server
    await server.stop()
