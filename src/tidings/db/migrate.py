"""Alembic, configured in code so migrations ship inside the package and run anywhere.

`upgrade(url)` brings a database to the head revision; `head()` and `current(url)` let
`/readyz` and the tests check that a database is up to date.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from tidings.db.engine import prepare_sqlite_path

MIGRATIONS = Path(__file__).parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def heads() -> list[str]:
    return list(ScriptDirectory.from_config(alembic_config("")).get_heads())


def head() -> str:
    found = heads()
    if len(found) != 1:
        raise RuntimeError(f"migrations must have exactly one head, found {found}")
    return found[0]


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` (sync entry point; runs its own event loop)."""
    prepare_sqlite_path(url)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)


async def current(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with engine.connect() as connection:
        return await connection.run_sync(read)
