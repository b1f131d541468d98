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


def test_0013_freezes_what_is_in_flight_and_nothing_else(empty_database: str) -> None:
    """Every template gets its version 1, every campaign a version with its connection
    resolved; broadcasts and messages in flight point at it, finished ones do not."""
    config = migrate.alembic_config(empty_database)
    command.upgrade(config, "0012")
    at = datetime(2026, 12, 1, tzinfo=UTC)
    statements = [
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'A', 'a', :at, :at)",
        "INSERT INTO connections (id, org_id, name, channel, kind, settings, credentials,"
        " max_concurrency, is_default, created_at, updated_at)"
        " VALUES (7, 1, 'relay', 'email', 'sink', '{}', '{}', 10, TRUE, :at, :at)",
        "INSERT INTO templates (id, org_id, name, channel, subject, text, is_inline,"
        " created_at, updated_at) VALUES (3, 1, 't', 'email', 'Hi', 'x', FALSE, :at, :at)",
        "INSERT INTO campaigns (id, org_id, name, channel, template_id, purpose, from_email,"
        " track_opens, track_clicks, is_single_send, created_at, updated_at) VALUES (5, 1, 'c',"
        " 'email', 3, 'marketing', 'a@acme.example', FALSE, FALSE, FALSE, :at, :at)",
        "INSERT INTO broadcasts (id, org_id, campaign_id, name, status, audience, is_test,"
        " contacts_count, recipients_count, skipped_count, sent_count, failed_count,"
        " delivered_count, opened_count, clicked_count, played_count, complained_count,"
        " unsubscribed_count, created_at, updated_at) VALUES"
        " (1, 1, 5, 'live', 'SENDING', '{}', FALSE, 0,0,0,0,0,0,0,0,0,0,0, :at, :at),"
        " (2, 1, 5, 'done', 'SENT', '{}', FALSE, 0,0,0,0,0,0,0,0,0,0,0, :at, :at)",
        "INSERT INTO messages (id, org_id, broadcast_id, campaign_id, channel, status,"
        " is_test, attempts, due_at, cost, created_at) VALUES"
        " (1, 1, 1, 5, 'email', 'queued', FALSE, 0, :at, 0, :at),"
        " (2, 1, 2, 5, 'email', 'sent', FALSE, 1, :at, 0, :at)",
    ]
    for statement in statements:
        _sql(empty_database, statement, [{"at": at}])
    command.upgrade(config, "0013")

    assert _sql(
        empty_database, "SELECT template_id, number, subject, text FROM template_versions"
    ) == [(3, 1, "Hi", "x")]
    assert _sql(empty_database, "SELECT version FROM templates") == [(1,)]
    [(version_id, purpose, connection_id)] = _sql(
        empty_database, "SELECT id, purpose, connection_id FROM campaign_versions"
    )
    assert (purpose, connection_id) == ("marketing", 7)  # the org's default, resolved
    assert _sql(empty_database, "SELECT id, campaign_version_id FROM broadcasts ORDER BY id") == [
        (1, version_id),
        (2, None),
    ]
    assert _sql(empty_database, "SELECT id, campaign_version_id FROM messages ORDER BY id") == [
        (1, version_id),
        (2, None),
    ]
