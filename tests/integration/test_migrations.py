"""Migrations: one head; an empty database of each dialect upgrades to it, matches the
models exactly, and downgrades back to empty."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_ENV
from tests.support import pgdb
from tidings.db import migrate
from tidings.schema import Base


def test_there_is_exactly_one_head() -> None:
    assert len(migrate.heads()) == 1


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    url = asyncio.run(pgdb.create())
    yield url
    asyncio.run(pgdb.drop(url))


def _inspect(url: str) -> tuple[str | None, list[object], set[str]]:
    def read(connection: Connection) -> tuple[str | None, list[object], set[str]]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
        tables = set(inspect(connection).get_table_names())
        return context.get_current_revision(), diff, tables

    async def main() -> tuple[str | None, list[object], set[str]]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(read)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_empty_database_upgrades_to_head_matching_the_models(empty_database: str) -> None:
    migrate.upgrade(empty_database)

    revision, diff, tables = _inspect(empty_database)
    assert revision == migrate.head()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert set(Base.metadata.tables) <= tables


def test_upgrade_is_idempotent_and_downgrade_empties(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    migrate.upgrade(empty_database)  # a second start must be a no-op
    command.downgrade(migrate.alembic_config(empty_database), "base")
    revision, _, tables = _inspect(empty_database)
    assert revision is None
    assert tables & set(Base.metadata.tables) == set()


def _sql(url: str, statement: str, params: list[dict[str, object]] | None = None) -> list[Any]:
    """One statement (executemany with `params`) in its own transaction; its rows."""

    async def main() -> list[Any]:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement), params)
                return [tuple(row) for row in result] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(main())


def test_0004_backfills_each_stored_phone_s_country(empty_database: str) -> None:
    config = migrate.alembic_config(empty_database)
    command.upgrade(config, "0003")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    _sql(
        empty_database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'A', 'a', :at, :at)",
        [{"at": at}],
    )
    phones = ["+33612345678", "+447911123456", "+80012345678", None]
    _sql(
        empty_database,
        "INSERT INTO contacts (id, org_id, email, phone, attributes, email_status, sms_status,"
        " created_at, updated_at) VALUES (:id, 1, :email, :phone, '{}', 'subscribed',"
        " 'subscribed', :at, :at)",
        [
            {"id": n, "email": f"p{n}@example.com", "phone": phone, "at": at}
            for n, phone in enumerate(phones, start=1)
        ],
    )
    command.upgrade(config, "0004")
    rows = _sql(empty_database, "SELECT id, phone_country FROM contacts ORDER BY id")
    assert rows == [(1, "FR"), (2, "GG"), (3, None), (4, None)]
    assert _sql(empty_database, "SELECT sms_countries FROM orgs") == [(None,)]
