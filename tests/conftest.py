"""Fixtures shared by every test layer.

`database_url` is parametrised: every test that asks for a database runs on SQLite and,
when TIDINGS_TEST_DATABASE_URL names a PostgreSQL database, on PostgreSQL too (otherwise
that case is skipped, with the reason shown in pytest's summary).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tidings.api.app import create_app
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.db.models import Base
from tidings.settings import Settings

PG_ENV = "TIDINGS_TEST_DATABASE_URL"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "tidings.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (set by .ci/run when a server answers)")
    migrate.upgrade(url)
    return url


async def _truncate_all(url: str) -> None:
    engine = create_async_engine(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    async with engine.begin() as connection:
        await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    await engine.dispose()


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
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    if settings.database_url.startswith("postgresql"):
        await _truncate_all(settings.database_url)
    database = Database(settings)
    yield database
    await database.dispose()


@pytest.fixture
async def client(settings: Settings, db: Database) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client speaking to the ASGI app (its lifespan run), on the test's database."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tidings.test") as http:
            yield http


@pytest.fixture
def cli_env(settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the CLI (which reads TIDINGS_* itself) at the test's database."""
    monkeypatch.setenv("TIDINGS_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TIDINGS_AUTO_MIGRATE", "false")
