"""Migrations: one head; an empty database of each dialect upgrades to it, matches the
models exactly, and downgrades back to empty."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import PG_ENV
from tests.support import pgdb
from tidings.connections.models import Connection as ConnectionRow
from tidings.db import migrate
from tidings.db.engine import Database
from tidings.db.reseal import reseal
from tidings.db.sealed import raw, sealed_columns
from tidings.idempotency import service as idempotency
from tidings.schema import Base
from tidings.settings import Settings


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


class _SqliteRevisions:
    """SQLite files migrated to a given revision, each made once per session by upgrading a
    copy of the nearest one below it; a test gets a copy of its own.

    A test of migration N starts from a database at N-1 (or N): upgrading an empty SQLite
    file that far costs about a second each time (batch mode rebuilds every table it
    alters), and the state is the same either way. The upgrade from empty to head itself
    is what `test_empty_database_upgrades_to_head_matching_the_models` tests.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._made: dict[str, Path] = {}
        revisions = ScriptDirectory.from_config(migrate.alembic_config("")).walk_revisions()
        self._chain = [script.revision for script in revisions][::-1]  # base first

    def copy_at(self, revision: str, path: Path) -> str:
        """A copy at `path` of the database at `revision`; its URL."""
        shutil.copyfile(self._cached(revision), path)
        return f"sqlite+aiosqlite:///{path}"

    def _cached(self, revision: str) -> Path:
        if revision not in self._made:
            path = self._directory / f"{revision}.db"
            below = [r for r in self._chain[: self._chain.index(revision)] if r in self._made]
            if below:
                shutil.copyfile(self._made[below[-1]], path)
            migrate.upgrade(f"sqlite+aiosqlite:///{path}", revision)
            self._made[revision] = path
        return self._made[revision]


@pytest.fixture(scope="session")
def sqlite_revisions(tmp_path_factory: pytest.TempPathFactory) -> _SqliteRevisions:
    return _SqliteRevisions(tmp_path_factory.mktemp("revisions"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_at(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`database_at("0015")`: a new database of the test's dialect, migrated to 0015."""
    if request.param == "sqlite":
        revisions: _SqliteRevisions = request.getfixturevalue("sqlite_revisions")
        yield lambda revision: revisions.copy_at(revision, tmp_path / "migrated.db")
        return
    if not os.environ.get(PG_ENV):
        pytest.skip(f"PostgreSQL tests need {PG_ENV}")
    made: list[str] = []

    def at(revision: str) -> str:  # from empty: on PostgreSQL, a copy costs as much
        made.append(asyncio.run(pgdb.create()))
        migrate.upgrade(made[-1], revision)
        return made[-1]

    yield at
    for url in made:
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


def test_0004_backfills_each_stored_phone_s_country(database_at: Callable[[str], str]) -> None:
    database = database_at("0003")
    config = migrate.alembic_config(database)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'A', 'a', :at, :at)",
        [{"at": at}],
    )
    phones = ["+33612345678", "+447911123456", "+80012345678", None]
    _sql(
        database,
        "INSERT INTO contacts (id, org_id, email, phone, attributes, email_status, sms_status,"
        " created_at, updated_at) VALUES (:id, 1, :email, :phone, '{}', 'subscribed',"
        " 'subscribed', :at, :at)",
        [
            {"id": n, "email": f"p{n}@example.com", "phone": phone, "at": at}
            for n, phone in enumerate(phones, start=1)
        ],
    )
    command.upgrade(config, "0004")
    rows = _sql(database, "SELECT id, phone_country FROM contacts ORDER BY id")
    assert rows == [(1, "FR"), (2, "GG"), (3, None), (4, None)]
    assert _sql(database, "SELECT sms_countries FROM orgs") == [(None,)]


def test_0013_freezes_what_is_in_flight_and_nothing_else(database_at: Callable[[str], str]) -> None:
    """Every template gets its version 1, every campaign a version with its connection
    resolved; broadcasts and messages in flight point at it, finished ones do not."""
    database = database_at("0012")
    config = migrate.alembic_config(database)
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
        _sql(database, statement, [{"at": at}])
    command.upgrade(config, "0013")

    assert _sql(database, "SELECT template_id, number, subject, text FROM template_versions") == [
        (3, 1, "Hi", "x")
    ]
    assert _sql(database, "SELECT version FROM templates") == [(1,)]
    [(version_id, purpose, connection_id)] = _sql(
        database, "SELECT id, purpose, connection_id FROM campaign_versions"
    )
    assert (purpose, connection_id) == ("marketing", 7)  # the org's default, resolved
    assert _sql(database, "SELECT id, campaign_version_id FROM broadcasts ORDER BY id") == [
        (1, version_id),
        (2, None),
    ]
    assert _sql(database, "SELECT id, campaign_version_id FROM messages ORDER BY id") == [
        (1, version_id),
        (2, None),
    ]


def test_0016_moves_secret_settings_and_builds_kannel_reports_then_seals(
    database_at: Callable[[str], str],
) -> None:
    """An http_sms body moves to the credentials; a Kannel `dlr_url` gives way to
    `delivery_reports` and a generated token (one given is kept); the values stay
    readable until the first start seals them, and a downgrade puts them back."""
    database = database_at("0015")
    config = migrate.alembic_config(database)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    rows = [
        (1, "http_sms", {"url": "https://gw.example/", "body": {"key": "body-key-123"}},
         {"headers": {"Authorization": "Bearer header-key-123"}}),
        (2, "kannel", {"base_url": "http://k.example", "dlr_url": "http://x/?t=1"},
         {"username": "u", "password": "kannel-password-123", "inbound_token": "T" * 24}),
        (3, "kannel", {"base_url": "http://k.example"}, {"username": "u", "password": "p"}),
    ]  # fmt: skip
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'A', 'a', :at, :at)",
        [{"at": at}],
    )
    _sql(
        database,
        "INSERT INTO connections (id, org_id, name, channel, kind, settings, credentials,"
        " max_concurrency, is_default, created_at, updated_at)"
        " VALUES (:id, 1, :name, 'sms', :kind, :settings, :credentials, 10, FALSE, :at, :at)",
        [
            {"id": ident, "name": f"c{ident}", "kind": kind, "at": at,
             "settings": json.dumps(settings), "credentials": json.dumps(credentials)}
            for ident, kind, settings, credentials in rows
        ],
    )  # fmt: skip
    command.upgrade(config, "0016")

    async def read() -> list[tuple[dict[str, Any], dict[str, Any]]]:
        db = Database(Settings(database_url=database, secret_key="k" * 32))
        try:
            async with db.transaction(write=False) as session:
                found = await session.scalars(select(ConnectionRow).order_by(ConnectionRow.id))
                return [(c.settings, c.credentials) for c in found]
        finally:
            await db.dispose()

    (http, http_secret), (given, given_secret), (bare, bare_secret) = asyncio.run(read())
    assert "body" not in http
    assert http_secret["body"] == {"key": "body-key-123"}
    assert (given["delivery_reports"], given_secret["inbound_token"]) == (True, "T" * 24)
    assert "dlr_url" not in given
    assert bare["delivery_reports"] is False
    assert len(bare_secret["inbound_token"]) >= 24

    command.downgrade(config, "0015")
    [(settings, credentials)] = _sql(
        database, "SELECT settings, credentials FROM connections WHERE id = 1"
    )
    loaded = [json.loads(v) if isinstance(v, str) else v for v in (settings, credentials)]
    assert loaded == [rows[0][2], rows[0][3]]
    command.upgrade(config, "head")

    async def seal() -> list[str]:
        db = Database(Settings(database_url=database, secret_key="k" * 32))
        try:
            await reseal(db, sealed_columns(Base.metadata), plaintext_only=True)
            async with db.transaction(write=False) as session:
                return list(await session.scalars(select(raw(ConnectionRow.credentials))))
        finally:
            await db.dispose()

    stored = asyncio.run(seal())
    assert all(value.startswith("enc:v0:") for value in stored)
    secrets = ("body-key-123", "header-key-123", "kannel-password-123", "T" * 24)
    assert not any(secret in value for value in stored for secret in secrets)
    assert asyncio.run(read())[0][1]["body"] == {"key": "body-key-123"}
    with pytest.raises(Exception, match="sealed"):
        command.downgrade(config, "0015")


def test_0019_gives_the_keys_stored_before_it_their_route(
    database_at: Callable[[str], str],
) -> None:
    """Before 0019 only POST /v1/orgs/{org_id}/messages took a key: a retry after the
    upgrade still finds its answer there, and the same key is free on other routes."""
    database = database_at("0018")
    config = migrate.alembic_config(database)
    at = datetime.now(UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at)"
        " VALUES (:id, :name, :name, :at, :at)",
        [{"id": 1, "name": "a", "at": at}, {"id": 2, "name": "b", "at": at}],
    )
    _sql(
        database,
        "INSERT INTO idempotency_keys (org_id, key, request_hash, status_code, response,"
        " created_at, finished_at) VALUES (:org, 'k', :hash, 201, :response, :at, :at)",
        [
            {"org": org, "hash": "h" * 64, "response": json.dumps({"id": org}), "at": at}
            for org in (1, 2)
        ],
    )
    command.upgrade(config, "0019")
    routes = dict(_sql(database, "SELECT org_id, route FROM idempotency_keys"))
    assert routes == {
        org: idempotency.route_digest("POST", f"/v1/orgs/{org}/messages") for org in (1, 2)
    }
    # Another route may now use the same key in the same org.
    _sql(
        database,
        "INSERT INTO idempotency_keys (org_id, route, key, request_hash, created_at)"
        " VALUES (1, :route, 'k', :hash, :at)",
        [{"route": idempotency.route_digest("POST", "/v1/orgs/1/lists"), "hash": "h" * 64,
          "at": at}],
    )  # fmt: skip
    command.downgrade(config, "0018")
    assert _sql(database, "SELECT count(*) FROM idempotency_keys") == [(0,)]
    command.upgrade(config, "head")


def test_0020_adds_the_sending_domains_and_their_keys(database_at: Callable[[str], str]) -> None:
    database = database_at("0020")
    config = migrate.alembic_config(database)
    at = datetime.now(UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'a', 'a', :at, :at)",
        [{"at": at}],
    )
    _sql(
        database,
        "INSERT INTO sending_domains (id, org_id, name, include_subdomains, created_at,"
        " updated_at) VALUES (1, 1, 'example.com', false, :at, :at)",
        [{"at": at}],
    )
    key = (
        "INSERT INTO dkim_keys (org_id, domain_id, selector, algorithm, status, private_key,"
        " public_key, created_at) VALUES (1, 1, 's1', 'rsa', 'active', 'enc:x', 'p', :at)"
    )
    _sql(database, key, [{"at": at}])
    with pytest.raises(Exception, match=r"(?i)unique"):
        _sql(database, key, [{"at": at}])  # one key per selector and domain
    command.downgrade(config, "0019")
    assert not {"sending_domains", "dkim_keys"} & _inspect(database)[2]


def test_0021_adds_members_one_email_each_and_their_sessions_go_with_them(
    database_at: Callable[[str], str],
) -> None:
    """A member's email is unique across orgs (what a person signs in with); deleting an
    org deletes its members, and their sessions with them."""
    database = database_at("0021")
    config = migrate.alembic_config(database)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (:id, :n, :n, :at, :at)",
        [{"id": 1, "n": "a", "at": at}, {"id": 2, "n": "b", "at": at}],
    )
    insert_member = (
        "INSERT INTO members (id, org_id, email, password_hash, role, is_operator, created_at)"
        " VALUES (:id, :org, :email, 'h', 'owner', FALSE, :at)"
    )
    _sql(database, insert_member, [{"id": 1, "org": 1, "email": "a@x.org", "at": at}])
    with pytest.raises(Exception, match=r"(?i)unique"):
        _sql(database, insert_member, [{"id": 2, "org": 2, "email": "a@x.org", "at": at}])
    _sql(
        database,
        "INSERT INTO console_sessions (member_id, org_id, token_hash, csrf_token, created_at,"
        " last_seen_at, expires_at) VALUES (1, 1, :hash, 'c', :at, :at, :at)",
        [{"hash": "t" * 64, "at": at}],
    )

    async def delete_org() -> None:  # through Tidings' engine: SQLite enforces the keys
        db = Database(Settings(database_url=database, secret_key="k" * 32))
        try:
            async with db.transaction() as session:
                await session.execute(text("DELETE FROM orgs WHERE id = 1"))
        finally:
            await db.dispose()

    asyncio.run(delete_org())
    assert _sql(database, "SELECT count(*) FROM console_sessions") == [(0,)]
    command.downgrade(config, "0020")
    _, _, tables = _inspect(database)
    assert not tables & {"members", "console_sessions", "sign_in_attempts"}


def test_0022_indexes_messages_by_org_and_date(database_at: Callable[[str], str]) -> None:
    """The console's overview and its search by date read a range of this index."""
    database = database_at("0022")
    config = migrate.alembic_config(database)

    def indexes() -> set[str]:
        async def main() -> set[str]:
            engine = create_async_engine(database)
            try:
                async with engine.connect() as connection:
                    found = await connection.run_sync(lambda c: inspect(c).get_indexes("messages"))
                    return {str(i["name"]) for i in found}
            finally:
                await engine.dispose()

        return asyncio.run(main())

    assert "ix_messages_org_id_created_at" in indexes()
    command.downgrade(config, "0021")
    assert "ix_messages_org_id_created_at" not in indexes()


def test_0023_adds_local_time_and_quiet_hours_as_nulls(database_at: Callable[[str], str]) -> None:
    """0023's columns are all nullable: an org, campaign and broadcast stored before it
    read as no zone, no quiet hours and no local time, as they behaved."""
    database = database_at("0022")
    config = migrate.alembic_config(database)
    at = datetime.now(UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'a', 'a', :at, :at)",
        [{"at": at}],
    )
    command.upgrade(config, "0023")
    assert _sql(database, "SELECT timezone, quiet_hours, sending_days FROM orgs") == [
        (None, None, None)
    ]
    for table, columns in (
        ("campaigns", "quiet_hours"),
        ("campaign_versions", "quiet_hours"),
        ("broadcasts", "local_time, local_date, due_schedule"),
    ):
        assert _sql(database, f"SELECT {columns} FROM {table}") == []  # noqa: S608
    command.downgrade(config, "0022")
    assert _sql(database, "SELECT count(*) FROM orgs") == [(1,)]
    command.upgrade(config, "head")


def test_0024_adds_failover_without_touching_what_is_stored(
    database_at: Callable[[str], str],
) -> None:
    """Campaigns and messages stored before 0024 keep their one connection (the new
    columns are null); a connection's breaker row goes with the downgrade, the
    connection stays."""
    database = database_at("0023")
    config = migrate.alembic_config(database)
    at = datetime(2026, 12, 1, tzinfo=UTC)
    for statement in (
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'A', 'a', :at, :at)",
        "INSERT INTO connections (id, org_id, name, channel, kind, settings, credentials,"
        " max_concurrency, is_default, created_at, updated_at)"
        " VALUES (7, 1, 'gw', 'sms', 'sink', '{}', '{}', 10, FALSE, :at, :at)",
        "INSERT INTO messages (id, org_id, channel, status, is_test, attempts, due_at, cost,"
        " created_at) VALUES (9, 1, 'sms', 'sent', FALSE, 1, :at, 0, :at)",
    ):
        _sql(database, statement, [{"at": at}])
    command.upgrade(config, "0024")
    assert _sql(database, "SELECT connection_id FROM messages") == [(None,)]
    _sql(
        database,
        "INSERT INTO connection_health (connection_id, org_id, state, opened_until,"
        " window_started_at, attempts, errors, previous_attempts, previous_errors, updated_at)"
        " VALUES (7, 1, 'open', :at, :at, 20, 20, 0, 0, :at)",
        [{"at": at}],
    )
    assert _sql(database, "SELECT state, errors FROM connection_health") == [("open", 20)]
    command.downgrade(config, "0023")
    _, _, tables = _inspect(database)
    assert "connection_health" not in tables
    assert _sql(database, "SELECT id FROM connections") == [(7,)]
    assert _sql(database, "SELECT id FROM messages") == [(9,)]


def test_0025_adds_the_stored_message_id_and_its_partial_index(
    database_at: Callable[[str], str],
) -> None:
    """Messages stored before 0025 keep no Message-ID (their bounces match by its old
    form); the index holds only the rows that have one."""
    database = database_at("0024")
    config = migrate.alembic_config(database)
    at = datetime.now(UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'a', 'a', :at, :at)",
        [{"at": at}],
    )
    _sql(
        database,
        "INSERT INTO messages (id, org_id, channel, recipient, status, is_test, attempts,"
        " due_at, cost, created_at) VALUES (7, 1, 'email', 'a@example.com', 'sent', :f, 1,"
        " :at, 0, :at)",
        [{"at": at, "f": False}],
    )
    command.upgrade(config, "0025")
    assert _sql(database, "SELECT id, email_message_id FROM messages") == [(7, None)]
    _sql(database, "UPDATE messages SET email_message_id = 'x@acme.example'")
    found = _sql(
        database,
        "SELECT id FROM messages WHERE org_id = 1 AND email_message_id = 'x@acme.example'",
    )
    assert found == [(7,)]
    command.downgrade(config, "0024")
    assert _sql(database, "SELECT id FROM messages") == [(7,)]
    command.upgrade(config, "head")


def test_0026_adds_the_console_s_contact_imports(database_at: Callable[[str], str]) -> None:
    database = database_at("0026")
    config = migrate.alembic_config(database)
    _, _, tables = _inspect(database)
    assert "contact_imports" in tables
    command.downgrade(config, "0025")
    _, _, tables = _inspect(database)
    assert "contact_imports" not in tables
    command.upgrade(config, "head")


def test_0027_keeps_attempts_and_indexes_the_messages_that_fell_back(
    database_at: Callable[[str], str],
) -> None:
    """Messages stored before 0027 keep their row (their earlier attempts were never
    kept); the partial index holds only the rows that fell back."""
    database = database_at("0026")
    config = migrate.alembic_config(database)
    at = datetime.now(UTC)
    _sql(
        database,
        "INSERT INTO orgs (id, name, login, created_at, updated_at) VALUES (1, 'a', 'a', :at, :at)",
        [{"at": at}],
    )
    _sql(
        database,
        "INSERT INTO messages (id, org_id, broadcast_id, channel, status, is_test, attempts,"
        " due_at, cost, created_at, fell_back_to) VALUES (7, 1, 3, 'email', 'failed', :f, 2,"
        " :at, 0, :at, 8)",
        [{"at": at, "f": False}],
    )
    command.upgrade(config, "0027")
    _, _, tables = _inspect(database)
    assert "message_attempts" in tables
    _sql(
        database,
        "INSERT INTO message_attempts (org_id, message_id, attempt, connection_id, outcome,"
        " reason, at) VALUES (1, 7, 1, 4, 'failed over', '503', :at)",
        [{"at": at}],
    )
    assert _sql(database, "SELECT message_id, attempt FROM message_attempts") == [(7, 1)]
    found = _sql(
        database,
        "SELECT id FROM messages WHERE broadcast_id = 3 AND fell_back_to IS NOT NULL",
    )
    assert found == [(7,)]
    command.downgrade(config, "0026")
    _, _, tables = _inspect(database)
    assert "message_attempts" not in tables
    assert _sql(database, "SELECT id FROM messages") == [(7,)]
    command.upgrade(config, "head")
