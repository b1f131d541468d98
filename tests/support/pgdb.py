"""Create or drop a throwaway PostgreSQL database for a test run (used by .ci/run).

python -m tests.support.pgdb create   → prints its SQLAlchemy URL, exit 1 if no server
python -m tests.support.pgdb drop URL   → also drops the per-worker databases beside it
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys

import asyncpg
from sqlalchemy.engine import make_url

HOST = os.environ.get("TIDINGS_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("TIDINGS_TEST_PG_PORT", "5432"))
USER = os.environ.get("TIDINGS_TEST_PG_USER", "postgres")
WORKER_SEPARATOR = "__"


async def _admin() -> asyncpg.Connection:
    return await asyncpg.connect(host=HOST, port=PORT, user=USER, database="postgres", timeout=5)


async def create() -> str:
    name = f"tidings_test_{secrets.token_hex(4)}"
    connection = await _admin()
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return f"postgresql+asyncpg://{USER}@{HOST}:{PORT}/{name}"


async def drop(url: str) -> None:
    """Drop the database and any per-worker databases made beside it (`worker_url`)."""
    name = url.rsplit("/", 1)[-1]
    if not name.startswith("tidings_test_"):
        raise SystemExit(f"refusing to drop {name!r}: not a throwaway test database")
    connection = await _admin()
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname = $1 OR starts_with(datname, $2)",
            name,
            f"{name}{WORKER_SEPARATOR}",
        )
        for row in rows:
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await connection.close()


async def worker_url(url: str, worker: str) -> str:
    """A new, empty database beside `url`'s, on the same server, for one pytest-xdist worker.

    Its name is `url`'s with `__<worker>` appended; one left over by an interrupted run is
    dropped first. `drop(url)` drops it too; `drop_worker` drops it alone.
    """
    parsed = make_url(url)
    name = f"{parsed.database}{WORKER_SEPARATOR}{worker}"
    connection = await _server(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return parsed.set(database=name).render_as_string(hide_password=False)


async def drop_worker(url: str) -> None:
    name = make_url(url).database
    if name is None or WORKER_SEPARATOR not in name:
        raise ValueError(f"refusing to drop {name!r}: not a per-worker test database")
    connection = await _server(url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _server(url: str) -> asyncpg.Connection:
    """An admin connection to the server that `url` names (its `postgres` database)."""
    parsed = make_url(url)
    return await asyncpg.connect(
        host=parsed.host or HOST,
        port=parsed.port or PORT,
        user=parsed.username or USER,
        password=parsed.password,
        database="postgres",
        timeout=5,
    )


def main() -> int:
    if sys.argv[1:2] == ["create"]:
        try:
            print(asyncio.run(create()))
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            print(f"no PostgreSQL server: {exc}", file=sys.stderr)
            return 1
        return 0
    if sys.argv[1:2] == ["drop"] and len(sys.argv) == 3:
        asyncio.run(drop(sys.argv[2]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
