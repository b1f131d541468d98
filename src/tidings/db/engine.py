"""Engines and sessions for both dialects, and the one place their connection set-up differs.

SQLite is the embedded default: WAL journal, foreign keys on, a busy timeout, and write
transactions opened with `BEGIN IMMEDIATE` so two writers queue instead of failing when a
read lock cannot be upgraded. The entry point of a use case opens its transaction with
`transaction(session)` (or `Database.transaction()`), which marks a write one with
`begin_write(session)` before its first statement (on PostgreSQL that is a no-op) and
commits it; services only run statements in it.

SQLite has one writer at a time, and its busy handler makes a waiting writer poll with
growing sleeps (up to 100 ms): with several writers waiting (concurrent API requests and
the dispatcher in one `tidings serve`), the lock sits idle between holders and some wait
far longer than others (seconds at p99 under an 8-way invite load). So within a process,
writers also queue on an `asyncio.Lock` per engine, taken in `begin_write` and released
when the session's transaction ends: first come, first served, handed over at once.
SQLite's own lock still orders this process against others (the CLI, a second server).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session, SessionTransaction

from tidings.db.sealed import attach
from tidings.settings import Settings, sqlite_path
from tidings.vault.keyring import keyring_for

_BEGIN_OPTION = "tidings_sqlite_begin"

POSTGRES_SESSION = {"plan_cache_mode": "force_custom_plan"}
"""Settings of every PostgreSQL connection Tidings opens.

asyncpg keeps each statement prepared; after five runs PostgreSQL may switch it to a
generic plan made once, then keep it until statistics change. Tidings' tables change size
fast — an org's contacts grow by a million in one import, an outbox fills and drains —
so a plan made when a table was empty (a scan is cheapest then) was still used at 58,000
rows, taking over a second per 500-key lookup where an index probe takes under one
millisecond. Planning every execution with its real parameters costs well under a
millisecond per statement.
"""
SQLITE_BUSY_TIMEOUT_MS = 30_000
_WRITE_LOCK_KEY = "tidings_write_lock"
# Per SQLite engine: this process's queue of writers (see the module's docstring).
_WRITE_LOCKS: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine for `settings.database_url`, with the dialect's connection set-up
    and the keyring of its sealed columns (`db/sealed.py`)."""
    engine = _create_engine(settings)
    attach(engine, lambda: keyring_for(settings))
    return engine


def _create_engine(settings: Settings) -> AsyncEngine:
    if settings.database_echo:
        # Through logging (stderr), never SQLAlchemy's echo to stdout: `--json` owns stdout.
        logging.basicConfig(stream=sys.stderr)
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
    if settings.is_sqlite:
        prepare_sqlite_path(settings.database_url)
        engine = create_async_engine(settings.database_url)
        _configure_sqlite(engine)
        return engine
    return create_async_engine(
        settings.database_url,
        connect_args={"server_settings": POSTGRES_SESSION},
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        pool_pre_ping=True,
    )


def prepare_sqlite_path(database_url: str) -> None:
    """Create the directory of an SQLite database file (`./var/` by default)."""
    path = sqlite_path(database_url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    _WRITE_LOCKS[engine.sync_engine] = asyncio.Lock()

    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let the "begin" hook below emit BEGIN itself, so it can choose IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "DEFERRED")
        connection.exec_driver_sql(f"BEGIN {mode}")


async def begin_write(session: AsyncSession) -> None:
    """Open the session's transaction as a write (SQLite: `BEGIN IMMEDIATE`).

    Call it first, before any statement (`transaction()` does, for the entry point that
    opens a write transaction): an already open transaction cannot become a write one, so
    that is a programming error here.
    """
    if session.in_transaction():
        raise RuntimeError("begin_write() inside an open transaction: commit or roll back first")
    lock = _WRITE_LOCKS.get(session.sync_session.get_bind())  # type: ignore[arg-type]
    if lock is not None:
        try:
            await asyncio.wait_for(lock.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000)
        except TimeoutError:
            raise TimeoutError("database is locked: no write turn in time") from None
        session.sync_session.info[_WRITE_LOCK_KEY] = lock
    try:
        await session.connection(execution_options={_BEGIN_OPTION: "IMMEDIATE"})
    except BaseException:
        _release_write_lock(session.sync_session)
        raise


def _release_write_lock(session: Session, transaction: SessionTransaction | None = None) -> None:
    """End of a session's outermost transaction: its SQLite write turn, if it had one."""
    if transaction is not None and transaction.parent is not None:
        return
    lock: asyncio.Lock | None = session.info.pop(_WRITE_LOCK_KEY, None)
    if lock is not None:
        lock.release()


event.listen(Session, "after_transaction_end", _release_write_lock)


@asynccontextmanager
async def transaction(session: AsyncSession, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """One use case's transaction on `session`, owned by the entry point that opens it (a
    route's dependency, a CLI command, a dispatcher step), committed when the block ends
    normally and rolled back when it raises. `write` opens it with `begin_write`. (A read
    one is committed too: a rollback would expire the objects it loaded.) Services run
    inside it and never commit or roll back."""
    if write:
        await begin_write(session)
    try:
        yield session
    except BaseException:
        await session.rollback()
        raise
    await session.commit()


class Database:
    """The engine and session factory of one process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """A session in one transaction (see `transaction`): the unit of work of a CLI
        command, a worker step or a test."""
        async with self.session() as session, transaction(session, write=write):
            yield session

    @asynccontextmanager
    async def request_session(self) -> AsyncIterator[AsyncSession]:
        """A session for one API request: on PostgreSQL it keeps one connection from the
        first statement to the end of the request, however many transactions it commits
        or rolls back.

        A session bound to the engine takes a connection from the pool for each of its
        transactions, and the pool checks each one with its pre-ping: three round trips
        (BEGIN, an empty statement, ROLLBACK) per transaction. An invite request runs about
        a dozen short transactions; `log_min_duration_statement` counted 13.7 BEGINs per
        request. SQLite has no pool ping, and its write turns (`begin_write`) set an
        option on the connection for one transaction only, so it keeps `session()`.
        """
        if self.dialect != "postgresql":
            async with self.session() as session:
                yield session
            return
        async with (
            self.engine.connect() as connection,
            self.sessionmaker(bind=connection) as session,
        ):
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
